"""CORS for the API: Starlette's ``CORSMiddleware``, installed only when origins are configured."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware


def add_cors(app: FastAPI, origins: Iterable[str]) -> None:
    """Let pages from ``origins`` (``*`` for any) call the API with a key; nothing is added without origins.

    Keys travel in headers, never in cookies, so credentials mode stays off; ``Retry-After`` is exposed so
    that a page can honour a 429.
    """
    allowed = sorted(set(origins))
    if not allowed:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept"],
        expose_headers=["Retry-After", "ETag"],
        max_age=600,
    )
