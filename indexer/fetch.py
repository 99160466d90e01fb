"""Reading an item's bytes from a local path or an http(s) URL, with limits.

URLs get a timeout, a size cap enforced while streaming, and retries with exponential backoff for
transient failures (connection errors, 429, 5xx); permanent failures (404, a response over the cap) fail
at once. Every failure is a :class:`FetchError` with a reason, recorded against the item.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from catalens.indexer.errors import FetchError

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchOptions:
    """Limits for reading item bytes.

    Attributes:
        max_bytes: the largest image accepted, local or remote.
        timeout_s: connect and read timeout per HTTP attempt.
        retries: extra attempts after a transient HTTP failure.
        backoff_s: the first retry's delay; each later one doubles it.
    """

    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.5


class _TransientError(Exception):
    pass


class Fetcher:
    """Reads item bytes; one instance is shared by the worker threads (httpx clients are thread-safe)."""

    def __init__(self, options: FetchOptions | None = None) -> None:
        self.options = options or FetchOptions()
        self._client: httpx.Client | None = None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.options.timeout_s,
                follow_redirects=True,
                headers={"User-Agent": "catalens-indexer"},
            )
        return self._client

    def read(self, source: str) -> bytes:
        """Return the bytes at ``source`` (a local path or an http(s) URL).

        Raises:
            FetchError: the bytes cannot be had; ``reason`` says why.
        """
        if source.startswith(("http://", "https://")):
            return self._read_url(source)
        return self._read_file(source)

    def _read_file(self, source: str) -> bytes:
        path = Path(source)
        try:
            size = path.stat().st_size
            if size > self.options.max_bytes:
                raise FetchError(source, f"file is {size} bytes, over the {self.options.max_bytes}-byte limit")
            return path.read_bytes()
        except FileNotFoundError:
            raise FetchError(source, "file not found") from None
        except IsADirectoryError:
            raise FetchError(source, "is a directory, not an image file") from None
        except OSError as e:
            raise FetchError(source, f"cannot read file: {e.strerror or e}") from e

    def _read_url(self, url: str) -> bytes:
        attempts = self.options.retries + 1
        for attempt in range(attempts):
            try:
                return self._get_once(url)
            except _TransientError as e:
                if attempt == attempts - 1:
                    raise FetchError(url, f"{e} (after {attempts} attempts)") from None
                time.sleep(self.options.backoff_s * (2**attempt))
        raise AssertionError("unreachable")

    def _get_once(self, url: str) -> bytes:
        try:
            with self._http().stream("GET", url) as response:
                if response.status_code in _RETRY_STATUS:
                    raise _TransientError(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise FetchError(url, f"HTTP {response.status_code} {response.reason_phrase}".strip())
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.options.max_bytes:
                    raise FetchError(url, f"response is {declared} bytes, over the {self.options.max_bytes}-byte limit")
                chunks: list[bytes] = []
                total = 0
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > self.options.max_bytes:
                        raise FetchError(url, f"response exceeds the {self.options.max_bytes}-byte limit")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise _TransientError(f"timed out after {self.options.timeout_s:g} s") from None
        except httpx.TransportError as e:
            raise _TransientError(f"cannot connect: {e}") from None
        except httpx.InvalidURL as e:
            raise FetchError(url, f"invalid URL: {e}") from None
