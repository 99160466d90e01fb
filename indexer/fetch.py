"""Reading an item's bytes from a local path or an http(s) URL, with limits and the URL guard.

Every URL, and every redirect it leads to (at most ``max_redirects``), passes
:func:`catalens.indexer.urlguard.check_url` first; the connection then goes to the very address the guard
checked (a custom httpcore network backend ignores the host name and connects to the pinned address, while
TLS still verifies the certificate against the host name). Environment proxies are ignored, since a proxy
would resolve the name again.

Limits: a per-read timeout, a total deadline over the whole read (retries, redirects and a server that
trickles one byte at a time included: every socket wait is cut to the time left), a size cap enforced while
streaming, and the response's content type (images, or whatever ``content_types`` names). Transient failures
(connection errors, 429, 5xx) are retried with exponential backoff inside the deadline; permanent ones fail at
once. Connection failures carry one generic reason, so a caller cannot tell a closed port from a filtered one.
Every failure is a :class:`FetchError` with a reason, recorded against the item.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx

from catalens.indexer.errors import FetchError
from catalens.indexer.urlguard import CheckedURL, URLRefusedError, check_url, parse_allow

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
IMAGE_TYPES = ("image/",)
MANIFEST_TYPES = ("text/csv", "text/plain", "application/json", "application/x-ndjson", "application/jsonl")
# Types that say nothing about the bytes: accepted, and the reader (the image decoder's format allowlist,
# the manifest parser) judges the bytes themselves.
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def is_url(source: str) -> bool:
    """Whether an item's source is a URL (any scheme: the guard refuses all but http and https) or a local path."""
    return _URL.match(source) is not None


@dataclass(frozen=True)
class FetchOptions:
    """Limits for reading item bytes.

    Attributes:
        max_bytes: the largest response or file accepted.
        timeout_s: connect timeout and the longest wait for any one read.
        deadline_s: the most time one :meth:`Fetcher.read` of a URL may take, all attempts together.
        retries: extra attempts after a transient HTTP failure.
        backoff_s: the first retry's delay; each later one doubles it.
        max_redirects: redirects followed (each checked by the guard) before giving up.
        allow: hosts (``cdn.example.com``, ``.example.com``) and networks (``10.2.0.0/16``) fetched although
            they are not public; see :func:`catalens.indexer.urlguard.parse_allow`.
        content_types: accepted content types (a trailing ``/`` accepts a whole family).
    """

    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 10.0
    deadline_s: float = 30.0
    retries: int = 2
    backoff_s: float = 0.5
    max_redirects: int = 5
    allow: tuple[str, ...] = ()
    content_types: tuple[str, ...] = IMAGE_TYPES


class _TransientError(Exception):
    pass


class _Budget(threading.local):
    """What the current thread's request may do: the checked address and the deadline."""

    pin: CheckedURL | None = None
    deadline: float = float("inf")


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait is cut to the time left before the thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, backend: _PinnedBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = self._backend.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the address the guard checked for this thread's request, never to a fresh DNS answer."""

    def __init__(self) -> None:
        self.budget = _Budget()
        self._sockets = httpcore.SyncBackend()

    def clamp(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.budget.deadline - time.monotonic()
        if left <= 0:
            raise error("the total deadline has passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        pin = self.budget.pin
        if pin is None or pin.url.raw_host.decode("ascii") != host or pin.port != port:
            raise httpcore.ConnectError(f"{host}:{port} was not checked by the URL guard")
        stream = self._sockets.connect_tcp(
            pin.address,
            port,
            timeout=self.clamp(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never fetched")


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that uses :class:`_PinnedBackend`."""

    def __init__(self, backend: _PinnedBackend) -> None:
        super().__init__(trust_env=False)
        # httpx does not take a network backend; its pool is rebuilt with one (same defaults otherwise).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


class Fetcher:
    """Reads item bytes; one instance is shared by the worker threads (httpx clients are thread-safe, and the
    pinned address and deadline are per thread).

    Raises:
        ValueError: an entry of ``options.allow`` is not a host, address or network.
    """

    def __init__(self, options: FetchOptions | None = None) -> None:
        self.options = options or FetchOptions()
        self._allow = parse_allow(self.options.allow)
        self._backend = _PinnedBackend()
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    transport=_PinnedTransport(self._backend),
                    timeout=self.options.timeout_s,
                    follow_redirects=False,  # each hop is checked by the guard below
                    trust_env=False,
                    headers={"User-Agent": "catalens-indexer"},
                )
            return self._client

    def read(self, source: str) -> bytes:
        """Return the bytes at ``source`` (a local path or an http(s) URL).

        Raises:
            URLRefusedError: the URL guard refused the URL or one of its redirects (``rule`` says which).
            FetchError: the bytes cannot be had; ``reason`` says why.
        """
        if is_url(source):
            return self._read_url(source)  # any scheme: the guard refuses all but http and https
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
        deadline = time.monotonic() + self.options.deadline_s
        attempts = self.options.retries + 1
        for attempt in range(attempts):
            try:
                return self._get_once(url, deadline)
            except _TransientError as e:
                delay = self.options.backoff_s * (2**attempt)
                if attempt == attempts - 1:
                    raise FetchError(url, f"{e} (after {attempts} attempts)") from None
                if time.monotonic() + delay >= deadline:
                    raise FetchError(url, f"{e} (gave up at the {self.options.deadline_s:g} s deadline)") from None
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _get_once(self, url: str, deadline: float) -> bytes:
        current = url
        for hop in range(self.options.max_redirects + 1):
            try:
                checked = check_url(current, self._allow)
            except URLRefusedError as e:
                if hop == 0:
                    raise
                raise URLRefusedError(url, e.rule, f"redirect to {current}: {e.detail}") from None
            response = self._send(url, checked, deadline)
            try:
                if response.has_redirect_location:
                    try:
                        current = str(checked.url.join(response.headers["location"]))
                    except (httpx.InvalidURL, ValueError) as e:
                        raise URLRefusedError(url, "invalid URL", f"the redirect is to an invalid URL: {e}") from None
                    continue
                return self._body(url, response, deadline)
            except httpx.TransportError as e:
                raise self._transport_error(url, e, deadline) from None
            finally:
                response.close()
        raise FetchError(url, f"more than {self.options.max_redirects} redirects")

    def _send(self, url: str, checked: CheckedURL, deadline: float) -> httpx.Response:
        budget = self._backend.budget
        budget.pin, budget.deadline = checked, deadline
        try:
            client = self._http()
            return client.send(client.build_request("GET", checked.url), stream=True)
        except httpx.InvalidURL as e:
            raise URLRefusedError(url, "invalid URL", str(e)) from None
        except httpx.TransportError as e:
            raise self._transport_error(url, e, deadline) from None

    def _body(self, url: str, response: httpx.Response, deadline: float) -> bytes:
        limit = self.options.max_bytes
        if response.status_code in _RETRY_STATUS:
            raise _TransientError(f"HTTP {response.status_code}")
        if response.status_code >= 300:
            raise FetchError(url, f"HTTP {response.status_code} {response.reason_phrase}".strip())
        self._check_type(url, response)
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError(url, f"response is {declared} bytes, over the {limit}-byte limit")
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise FetchError(url, f"response exceeds the {limit}-byte limit")
            if time.monotonic() > deadline:
                raise self._late(url)
            chunks.append(chunk)
        return b"".join(chunks)

    def _check_type(self, url: str, response: httpx.Response) -> None:
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind in _UNTYPED:
            return
        if any(kind.startswith(t) if t.endswith("/") else kind == t for t in self.options.content_types):
            return
        wanted = ", ".join(t + "*" if t.endswith("/") else t for t in self.options.content_types)
        raise FetchError(url, f"the response is {kind}, not one of the accepted types ({wanted})")

    def _transport_error(self, url: str, error: httpx.TransportError, deadline: float) -> Exception:
        if time.monotonic() >= deadline:
            return self._late(url)
        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
            # One reason for refused, closed, filtered and unreachable: no port scanning through catalens.
            return _TransientError("cannot connect")
        if isinstance(error, httpx.TimeoutException):
            return _TransientError(f"timed out after {self.options.timeout_s:g} s")
        return _TransientError("the connection failed")

    def _late(self, url: str) -> FetchError:
        return FetchError(url, f"no complete response within the {self.options.deadline_s:g} s deadline")
