"""Who may call what: API keys and scopes, the cross-site write check, and the rate-limit dependency.

Routes attach :func:`require_read`, :func:`require_write` and :func:`rate_limited` as FastAPI dependencies;
the policy itself (:class:`AccessControl`) lives on ``app.state.access``. The rules:

* A key comes as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. A key that is sent must be valid
  (401), and a ``read`` key on a write route gets 403.
* Write routes need a key whenever keys are configured; reads need one unless ``public_read``.
  Without any keys a service serves writes only on loopback (``catalens serve`` refuses otherwise).
* A write request whose ``Origin`` (or, without one, ``Referer``) is neither the service's own origin nor an
  allowed CORS origin gets 403, keys or not: another site's page cannot drive the service through a
  browser. Without keys, a same-origin browser write must also be addressed to a loopback name (so DNS
  rebinding cannot pass for same-origin). Requests that carry neither header (curl, servers) are judged by
  their key alone.

Keys are never logged, echoed or kept in the clear: only their hashes are compared.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from catalens.search.security.keys import ApiKey, KeysFile, KeySource, Scope, default_keys_path, parse_env_keys
from catalens.search.security.ratelimit import RateLimiter
from catalens.search.settings import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="catalens"'}
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


@dataclass(frozen=True)
class Caller:
    """The caller of a request: the key it presented (if any) and its client address."""

    key: ApiKey | None
    address: str

    @property
    def identity(self) -> str:
        """What rate limits count by: the key when one was given, else the client address."""
        return f"key:{self.key.id}" if self.key is not None else f"address:{self.address}"


def parse_origins(text: str | None) -> tuple[str, ...]:
    """``CATALENS_CORS_ORIGINS``: comma-separated origins (``https://shop.example``), or ``*`` for any."""
    origins = []
    for part in (text or "").split(","):
        part = part.strip()
        if part == "*":
            origins.append(part)
        elif part:
            origin = _origin(part)
            if origin is None:
                raise ValueError(f"{part!r} is not an origin (scheme://host[:port])")
            origins.append(origin)
    return tuple(origins)


class AccessControl:
    """The service's access policy.

    Args:
        keys: where the accepted keys come from.
        public_read: whether read routes answer callers without a key.
        origins: CORS origins also allowed to send writes (``*`` allows any).
    """

    def __init__(self, keys: KeySource, *, public_read: bool = True, origins: tuple[str, ...] = ()) -> None:
        self.keys = keys
        self.public_read = public_read
        self.origins = frozenset(origins)

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessControl:
        """The policy the settings describe (keys from ``api_keys`` and the keys file).

        Raises:
            KeysError: a malformed ``CATALENS_API_KEYS`` entry or CORS origin.
            KeysFileError: an unreadable or malformed keys file.
        """
        from catalens.search.security.errors import KeysError

        path = settings.keys_file or default_keys_path(settings.store)
        source = KeySource(parse_env_keys(settings.api_keys), KeysFile(path))
        try:
            origins = parse_origins(settings.cors_origins)
        except ValueError as e:
            raise KeysError(f"CATALENS_CORS_ORIGINS: {e}") from None
        return cls(source, public_read=settings.public_read, origins=origins)

    def has_keys(self) -> bool:
        """Whether any key is configured (the service then requires one on write routes)."""
        return len(self.keys.ring()) > 0

    def check(self, request: Request, scope: Scope) -> Caller:
        """The caller of ``request`` if it may use a route of ``scope``.

        Raises:
            HTTPException: 403 for a cross-site write, 401 for a missing or invalid key (with
                ``WWW-Authenticate``), 403 for a key of too narrow a scope.
        """
        ring = self.keys.ring()
        if scope == "write" and request.method in WRITE_METHODS:
            self._check_origin(request, keyless=len(ring) == 0)
        presented = presented_key(request)
        address = request.client.host if request.client else "unknown"
        if presented is None:
            if (scope == "write" and len(ring) > 0) or (scope == "read" and not self.public_read):
                raise HTTPException(
                    status_code=401,
                    detail=f"this route needs an API key with {scope} scope: send it as "
                    "'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                    headers=_CHALLENGE,
                )
            return Caller(None, address)
        key = ring.match(presented)
        if key is None:
            raise HTTPException(status_code=401, detail="the API key is not valid", headers=_CHALLENGE)
        if not key.allows(scope):
            raise HTTPException(
                status_code=403, detail=f"the API key {key.name!r} has {key.scope} scope; this route needs {scope}"
            )
        return Caller(key, address)

    def _check_origin(self, request: Request, keyless: bool) -> None:
        source = request.headers.get("origin")
        if source is None:
            source = request.headers.get("referer")
        if source is None or "*" in self.origins:
            return
        claimed = _origin(source)
        if claimed is not None and claimed in self.origins:
            return
        if claimed is not None and _netloc(claimed) == _host(request):
            # Same origin. Without keys, also a loopback host name: a page whose own DNS name was rebound to
            # 127.0.0.1 is "same origin" with the service it reaches, but never addressed as localhost.
            if not keyless or _is_loopback_host(_host(request)):
                return
            raise HTTPException(
                status_code=403,
                detail="writes from a browser without an API key are accepted only at a loopback address "
                "(http://127.0.0.1 or http://localhost); create a key with `catalens keys add --scope write`",
            )
        shown = claimed[:200] if claimed else "an opaque or malformed origin"
        raise HTTPException(
            status_code=403,
            detail=f"cross-site write refused: a page from {shown} may not change this catalog "
            "(allow the site in CATALENS_CORS_ORIGINS if it should)",
        )


def presented_key(request: Request) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY``, else ``X-API-Key``; ``None`` without one."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _origin(text: str) -> str | None:
    """``scheme://host[:port]`` of a URL or origin, lower-cased, default port dropped; ``None`` if opaque."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    netloc = parts.netloc.lower().removesuffix(_DEFAULT_PORTS[scheme])
    return f"{scheme}://{netloc}"


def _netloc(origin: str) -> str:
    return origin.split("://", 1)[1]


def _host(request: Request) -> str:
    """The host the request was sent to (its ``Host`` header), default ports dropped."""
    host = request.headers.get("host", "").lower()
    for suffix in _DEFAULT_PORTS.values():
        host = host.removesuffix(suffix)
    return host


# Declared for the OpenAPI document (the "Authorize" button of /docs); the key itself is read by presented_key.
_BEARER = HTTPBearer(auto_error=False, description="an API key from `catalens keys add`")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key, in its own header")


def _is_loopback_host(host: str) -> bool:
    """Whether a ``Host`` value (``name[:port]``, ``[v6]:port``) names this machine's loopback interface."""
    if host.startswith("[") and "]" in host:
        name = host[1 : host.index("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _control(request: Request) -> AccessControl:
    control: AccessControl = request.app.state.access
    return control


async def require_read(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    _header: Annotated[str | None, Depends(_API_KEY)],
) -> Caller:
    """Dependency of read routes (search, items, classify, info)."""
    return _control(request).check(request, "read")


async def require_write(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    _header: Annotated[str | None, Depends(_API_KEY)],
) -> Caller:
    """Dependency of write routes (adding and deleting items)."""
    return _control(request).check(request, "write")


async def require_by_method(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    _header: Annotated[str | None, Depends(_API_KEY)],
) -> Caller:
    """Dependency of a router mixing both: reads (``GET``, ``HEAD``) need read scope, every other method write."""
    return _control(request).check(request, "read" if request.method in ("GET", "HEAD") else "write")


async def rate_limited(request: Request, caller: Annotated[Caller, Depends(require_read)]) -> None:
    """Dependency of the expensive routes: one token of the caller's bucket, or 429 with ``Retry-After``."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        return
    wait = limiter.acquire(caller.identity)
    if wait > 0:
        who = "API key" if caller.key is not None else "client address"
        retry = limiter.retry_after(wait)
        raise HTTPException(
            status_code=429,
            detail=f"too many requests: this route allows {limiter.rate.count} per {limiter.rate.period_s:g} s "
            f"for each {who}; retry in {retry} s",
            headers={"Retry-After": retry},
        )
