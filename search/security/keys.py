"""API keys: generated once, stored only as SHA-256 hashes, matched in constant time.

A key is 256 random bits (``secrets.token_urlsafe``) behind a ``clk_`` prefix, so one unsalted SHA-256
suffices: nothing of that entropy can be guessed back from its hash. Keys come from two places, merged:

* ``CATALENS_API_KEYS``: entries ``SCOPE:SHA256[:NAME]`` separated by commas (what ``catalens keys add``
  prints as its environment entry);
* a keys file (``CATALENS_KEYS_FILE``, by default ``<store>/keys.json``), written by ``catalens keys``: a
  schema-versioned JSON document replaced atomically, re-read by a running service when it changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from catalens.indexer.fsutil import atomic_write_text
from catalens.search.security.errors import KeysError, KeysFileError

log = logging.getLogger("catalens.security")

Scope = Literal["read", "write"]
SCOPES: tuple[str, ...] = get_args(Scope)
KEY_PREFIX = "clk_"
KEYS_SCHEMA_VERSION = 1
KEYS_FILE_NAME = "keys.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def generate_key() -> str:
    """A new random API key (shown to its owner once; only its hash is kept)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256, as 64 lowercase hex digits."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def default_keys_path(store: Path) -> Path:
    """Where a store keeps its keys file unless ``CATALENS_KEYS_FILE`` names another."""
    return Path(store) / KEYS_FILE_NAME


@dataclass(frozen=True)
class ApiKey:
    """One stored key: a name for people, its scope, and the hash of the key itself.

    Attributes:
        name: unique among the keys of one file; shown in listings and used by ``catalens keys remove``.
        scope: ``read`` (search, items, classify) or ``write`` (also add and delete items).
        sha256: the key's hash; never the key.
        created_at: ISO 8601 time of creation, when known.
    """

    name: str
    scope: Scope
    sha256: str = field(repr=False)
    created_at: str | None = None

    @property
    def id(self) -> str:
        """A short, stable handle (the start of the hash, which reveals nothing of the key)."""
        return self.sha256[:12]

    def allows(self, scope: Scope) -> bool:
        """Whether this key may call routes of ``scope`` (a write key may also read)."""
        return self.scope == "write" or scope == "read"


def _scope(value: object, where: str) -> Scope:
    if value not in SCOPES:
        raise KeysError(f"{where}: scope must be one of {', '.join(SCOPES)}, not {value!r}")
    return cast(Scope, value)


def _digest(value: object, where: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        raise KeysError(f"{where}: a key is stored as its SHA-256 (64 hex digits), never as the key itself")
    return value.lower()


@dataclass(frozen=True)
class KeyRing:
    """The keys a service accepts."""

    keys: tuple[ApiKey, ...] = ()

    def __len__(self) -> int:
        return len(self.keys)

    def match(self, presented: str) -> ApiKey | None:
        """The key whose hash ``presented`` has, or ``None``.

        Every stored hash is compared, each with :func:`hmac.compare_digest`, so the time taken says
        nothing about which key, or how much of one, matched.
        """
        digest = hash_key(presented).encode("ascii")
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.sha256.encode("ascii")) and found is None:
                found = key
        return found


def parse_env_keys(text: str | None) -> tuple[ApiKey, ...]:
    """Keys from ``CATALENS_API_KEYS``: comma-separated ``SCOPE:SHA256[:NAME]`` entries.

    Raises:
        KeysError: an entry is malformed (the message names its position, never its content).
    """
    keys: list[ApiKey] = []
    for n, entry in enumerate(part.strip() for part in (text or "").split(",")):
        if not entry:
            continue
        where = f"CATALENS_API_KEYS entry {n + 1}"
        fields = entry.split(":", 2)
        if len(fields) < 2:
            raise KeysError(f"{where}: expected SCOPE:SHA256 or SCOPE:SHA256:NAME")
        name = fields[2] if len(fields) == 3 and fields[2] else f"env-{n + 1}"
        keys.append(ApiKey(name=name, scope=_scope(fields[0], where), sha256=_digest(fields[1], where)))
    return tuple(keys)


class KeysFile:
    """A keys file: ``{"schema_version": 1, "keys": [{"name", "scope", "sha256", "created_at"}]}``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> tuple[ApiKey, ...]:
        """The stored keys; none when the file does not exist.

        Raises:
            KeysFileError: the file is unreadable, not JSON, of another schema version, or malformed.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ()
        except (OSError, UnicodeDecodeError) as e:
            raise KeysFileError(self.path, f"cannot be read ({e.__class__.__name__})") from e
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            raise KeysFileError(self.path, f"is not JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeysFileError(self.path, "is not a catalens keys file")
        version = document.get("schema_version")
        if version != KEYS_SCHEMA_VERSION:
            raise KeysFileError(
                self.path, f"has schema version {version!r}; this catalens reads version {KEYS_SCHEMA_VERSION}"
            )
        try:
            return tuple(self._key(entry, n) for n, entry in enumerate(document["keys"]))
        except KeysError as e:
            raise KeysFileError(self.path, str(e)) from None

    @staticmethod
    def _key(entry: Any, n: int) -> ApiKey:
        where = f"key {n + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KeysError(f"{where}: needs a name, a scope and a sha256")
        created = entry.get("created_at")
        return ApiKey(
            name=entry["name"],
            scope=_scope(entry.get("scope"), where),
            sha256=_digest(entry.get("sha256"), where),
            created_at=created if isinstance(created, str) else None,
        )

    def save(self, keys: tuple[ApiKey, ...]) -> None:
        """Replace the file atomically (readers see the old keys or the new ones, never a mix).

        Raises:
            KeysFileError: the file cannot be written.
        """
        document = {
            "schema_version": KEYS_SCHEMA_VERSION,
            "keys": [{"name": k.name, "scope": k.scope, "sha256": k.sha256, "created_at": k.created_at} for k in keys],
        }
        try:
            atomic_write_text(self.path, json.dumps(document, indent=2) + "\n")
        except OSError as e:
            raise KeysFileError(self.path, f"cannot be written ({e.strerror or e.__class__.__name__})") from e

    def add(self, scope: str, name: str | None = None) -> tuple[str, ApiKey]:
        """Create a key of ``scope``, store its hash, and return the key (to show once) with its record.

        Raises:
            KeysError: an unknown scope, a malformed name or one already taken.
            KeysFileError: the file cannot be read or written.
        """
        keys = self.load()
        checked = _scope(scope, "new key")
        secret = generate_key()
        digest = hash_key(secret)
        name = name or f"{checked}-{digest[:8]}"
        if not _NAME.match(name):
            raise KeysError(f"key name {name!r}: use up to 64 letters, digits, '.', '_', '@' or '-'")
        if any(k.name == name for k in keys):
            raise KeysError(f"a key named {name!r} exists already (remove it first, or choose another name)")
        created = datetime.now(UTC).isoformat(timespec="seconds")
        record = ApiKey(name=name, scope=checked, sha256=digest, created_at=created)
        self.save((*keys, record))
        return secret, record

    def remove(self, name_or_id: str) -> ApiKey:
        """Remove the key with this name (or id, the start of its hash); returns it.

        Raises:
            KeysError: no key, or more than one, answers to ``name_or_id``.
        """
        keys = self.load()
        matches = [k for k in keys if k.name == name_or_id] or [k for k in keys if k.id == name_or_id]
        if len(matches) != 1:
            raise KeysError(f"no key named {name_or_id!r} in {str(self.path)!r} (see `catalens keys list`)")
        self.save(tuple(k for k in keys if k is not matches[0]))
        return matches[0]


class KeySource:
    """The keys a running service accepts: the environment's, plus a keys file re-read when it changes.

    The file is checked with one ``stat`` per request, so ``catalens keys add|remove`` takes effect without a
    restart. A file that turns unreadable while serving keeps the keys last read (and is logged); one that
    is unreadable at start-up is an error, raised by the constructor.
    """

    def __init__(self, env_keys: tuple[ApiKey, ...], file: KeysFile | None) -> None:
        self._env_keys = env_keys
        self._file = file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._ring = KeyRing(env_keys)
        self._reload(strict=True)

    @property
    def file(self) -> KeysFile | None:
        return self._file

    def ring(self) -> KeyRing:
        """The current keys."""
        self._reload(strict=False)
        return self._ring

    def _reload(self, strict: bool) -> None:
        if self._file is None:
            return
        try:
            info = os.stat(self._file.path)
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            stamp = (0, 0, 0)  # no file (yet): no file keys
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                file_keys = self._file.load()
            except KeysFileError as e:
                if strict:
                    raise
                log.warning("keeping the keys read before: %s", e)
                return
            self._ring = KeyRing(self._env_keys + file_keys)
            self._stamp = stamp
