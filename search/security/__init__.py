"""Access control of the service: API keys with scopes, the cross-site write check, and rate limits.

The service holds one :class:`AccessControl` and one :class:`RateLimiter` on ``app.state``; routes attach
the dependencies of :mod:`catalens.search.security.access` (``require_read``, ``require_write``,
``rate_limited``). Keys are stored hashed (:mod:`catalens.search.security.keys`), never in the clear.
"""

from __future__ import annotations

from catalens.search.security.access import (
    AccessControl,
    Caller,
    rate_limited,
    require_by_method,
    require_read,
    require_write,
)
from catalens.search.security.errors import KeysError, KeysFileError
from catalens.search.security.keys import (
    ApiKey,
    KeyRing,
    KeysFile,
    KeySource,
    Scope,
    default_keys_path,
    generate_key,
    hash_key,
    parse_env_keys,
)
from catalens.search.security.ratelimit import Rate, RateLimiter

__all__ = [
    "AccessControl",
    "ApiKey",
    "Caller",
    "KeyRing",
    "KeySource",
    "KeysError",
    "KeysFile",
    "KeysFileError",
    "Rate",
    "RateLimiter",
    "Scope",
    "default_keys_path",
    "generate_key",
    "hash_key",
    "parse_env_keys",
    "rate_limited",
    "require_by_method",
    "require_read",
    "require_write",
]
