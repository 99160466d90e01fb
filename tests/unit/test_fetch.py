"""Reading bytes from URLs: retries for transient failures, immediate failure for permanent ones, a size cap."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from catalens.indexer.errors import FetchError
from catalens.indexer.fetch import Fetcher, FetchOptions

# The test servers listen on loopback, which the URL guard refuses unless allowed.
FAST = FetchOptions(max_bytes=1000, timeout_s=2.0, retries=2, backoff_s=0.01, allow=("127.0.0.1",))


def test_url_download(http_server: Callable[..., str]) -> None:
    base = http_server({"/ok.jpg": (200, b"x" * 10)})
    with Fetcher(FAST) as fetcher:
        assert fetcher.read(f"{base}/ok.jpg") == b"x" * 10


def test_transient_errors_are_retried(http_server: Callable[..., str]) -> None:
    base = http_server({"/flaky": lambda hit: (503, b"busy") if hit < 3 else (200, b"finally")})
    with Fetcher(FAST) as fetcher:
        assert fetcher.read(f"{base}/flaky") == b"finally"


def test_permanent_errors_fail_at_once(http_server: Callable[..., str]) -> None:
    base = http_server({})
    with Fetcher(FAST) as fetcher, pytest.raises(FetchError, match="HTTP 404"):
        fetcher.read(f"{base}/missing.jpg")


def test_size_cap(http_server: Callable[..., str]) -> None:
    base = http_server({"/huge": (200, b"x" * 5000)})
    with Fetcher(FAST) as fetcher, pytest.raises(FetchError, match="1000-byte limit"):
        fetcher.read(f"{base}/huge")


def test_unreachable_url_reports_attempts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Fetcher(FAST) as fetcher, pytest.raises(FetchError, match="after 3 attempts"):
        fetcher.read(f"http://127.0.0.1:{port}/gone.jpg")


def test_missing_local_file() -> None:
    with Fetcher(FAST) as fetcher, pytest.raises(FetchError, match="file not found"):
        fetcher.read("/definitely/not/here.jpg")
