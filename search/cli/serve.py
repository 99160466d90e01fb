"""``catalens serve``: the HTTP API and web page for a store, in one process or several workers."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import TYPE_CHECKING, Any

from catalens.search.cli.exits import EXIT_OK, EXIT_USAGE
from catalens.search.cli.parsing import add_text_encoder_options, positive_int
from catalens.search.cli.render import fail

if TYPE_CHECKING:
    from pydantic import ValidationError

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
    serve.add_argument(
        "--insecure-writes",
        action="store_true",
        help="on an address other than loopback, serve the write routes (add, delete) without any API key "
        "(refused otherwise; see `catalens keys add`)",
    )
    serve.add_argument(
        "--read-only",
        action="store_true",
        help="serve as a read replica (CATALENS_READ_ONLY): never write the store or take its writer lock, refuse "
        "item writes with 405, follow the generations (and items) the writer publishes; for scaling queries out",
    )
    add_text_encoder_options(serve)
    serve.add_argument(
        "--blur-faces",
        action="store_true",
        help="blur faces in served images and thumbnails (CATALENS_BLUR_FACES; needs `pip install 'catalens[faces]'`)",
    )
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted. The engine is opened first, so a missing store or model is an exit code."""
    import uvicorn
    from pydantic import ValidationError

    from catalens.search.api import create_app, open_engine
    from catalens.search.settings import Settings

    given: dict[str, Any] = {
        "store": args.store,
        "device": args.device,
        "text_encoder": args.text_encoder,
        "allow_unpaired_text_encoder": args.allow_unpaired,
    }
    if args.blur_faces:  # left off, the flag does not override CATALENS_BLUR_FACES=true from the environment
        given["blur_faces"] = True
    if args.read_only:  # likewise for CATALENS_READ_ONLY=true
        given["read_only"] = True
    try:
        settings = Settings(**given)
    except ValidationError as e:
        return fail(EXIT_USAGE, f"invalid setting: {_describe(e)}")
    access = describe_access(args.host, settings, args.insecure_writes)
    if access is None:
        return fail(
            EXIT_USAGE,
            f"refusing to serve on {args.host} without API keys: anyone who can reach it could add and delete "
            f"items. Create a write key with `catalens keys add --store {args.store} --scope write` (or set "
            "CATALENS_API_KEYS), bind to 127.0.0.1, or pass --insecure-writes to serve writes to anyone.",
        )
    if settings.blur_faces:  # a missing detector is an exit code here, not a traceback from a worker's start-up
        from catalens.models.faces import load_face_detector

        load_face_detector()
    engine = open_engine(settings)
    url = f"http://{args.host}:{args.port}/"
    role = "read replica of " if settings.read_only else ""
    print(f"Serving {role}{engine.store.path} ({engine.size} items, {engine.encoder.spec}) at {url}", flush=True)
    print(f"  web page {url}   API docs {url}docs   metrics {url}metrics", flush=True)
    print(f"  access: {access}", flush=True)
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


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the service on this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def describe_access(host: str, settings: Settings, insecure_writes: bool) -> str | None:
    """One line on who may read and write, or ``None`` when serving on ``host`` would expose open writes.

    Raises:
        KeysError: a malformed ``CATALENS_API_KEYS`` entry or CORS origin, or an unreadable keys file.
    """
    from catalens.search.security import AccessControl

    control = AccessControl.from_settings(settings)
    count = len(control.keys.ring())
    reads = "reads public" if settings.public_read else "reads need a key"
    if settings.read_only:  # nothing to expose: every write route answers 405
        keys = f"{count} API key(s)" if count else "no API keys"
        return f"read-only replica: {keys}; {reads}; writes refused (405); rate limit {settings.rate_limit}"
    if count:
        return f"{count} API key(s); {reads}; writes need a write key; rate limit {settings.rate_limit}"
    if is_loopback(host):
        return f"no API keys: {reads}; writes open to this machine only (same-site pages and local programs)"
    if not insecure_writes:
        return None
    print(
        f"catalens: warning: --insecure-writes: anyone who can reach {host} may add and delete items", file=sys.stderr
    )
    return f"no API keys: {reads}; WRITES OPEN TO ANYONE (--insecure-writes)"


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = "CATALENS_" + ".".join(str(p) for p in first.get("loc", ())).upper()
    return f"{where}: {first.get('msg', 'invalid')}"
