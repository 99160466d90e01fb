"""``catalens serve``: the HTTP API and web page for a store, in one process or several workers."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import add_text_encoder_options, positive_int

if TYPE_CHECKING:
    from catalens.search.cli.parsing import Commands
    from catalens.search.settings import Settings


def register_serve(commands: Commands) -> None:
    """Add ``catalens serve``."""
    serve = commands.add_parser("serve", help="serve the HTTP API and web page for a store")
    serve.add_argument("--store", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=positive_int, default=1, help="worker processes (each loads the model)")
    serve.add_argument("--device", default="auto")
    add_text_encoder_options(serve)
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted. The engine is opened first, so a missing store or model is an exit code."""
    import uvicorn

    from catalens.search.api import create_app, open_engine
    from catalens.search.settings import Settings

    settings = Settings(
        store=args.store,
        device=args.device,
        text_encoder=args.text_encoder,
        allow_unpaired_text_encoder=args.allow_unpaired,
    )
    engine = open_engine(settings)
    url = f"http://{args.host}:{args.port}/"
    print(f"Serving {engine.store.path} ({engine.size} items, {engine.encoder.spec}) at {url}", flush=True)
    print(f"  web page {url}   API docs {url}docs   metrics {url}metrics", flush=True)
    if args.workers == 1:
        try:
            uvicorn.run(create_app(settings, engine), host=args.host, port=args.port, log_level="warning")
        finally:
            engine.close()
        return EXIT_OK
    engine.close()
    _export(settings)  # each worker builds its own app, and engine, from these
    uvicorn.run(
        "catalens.search.api:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
    return EXIT_OK


def _export(settings: Settings) -> None:
    """Put the settings into this process's environment, which the worker processes inherit."""
    env = settings.to_env()
    for name in settings.env_names():
        if name not in env:  # a field left unset here must not come back from a stale variable
            os.environ.pop(name, None)
    os.environ.update(env)
