"""Fail fast and honestly when weights live on a hub this machine cannot reach.

huggingface_hub retries an unreachable host with exponential backoff (about 45 s per file) before it gives
up, even when the file is already cached. We probe the host once with a short timeout instead: weights in
the cache are then loaded in offline mode, and missing weights give a clear error at once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# Messages of loaders that wrap a failed download in a generic exception.
DOWNLOAD_FAILURE_MARKERS = ("Failed to download", "Failed initial config/weights load from HF Hub")


@dataclass(frozen=True)
class WeightSource:
    """Where a spec's weights come from.

    Attributes:
        url: the host the weights are downloaded from (an https URL).
        cached: whether a local copy already exists, so no download is needed.
    """

    url: str
    cached: bool


def offline_requested() -> bool:
    """True when the user set ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host can be opened within ``timeout`` seconds."""
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hf_repo_source(repo_id: str, cache_dir: str | None) -> WeightSource:
    """Describe the weights of an open_clip repository on the Hugging Face hub."""
    from huggingface_hub import constants, try_to_load_from_cache

    cached = any(
        isinstance(try_to_load_from_cache(repo_id, name, cache_dir=cache_dir), str) for name in HF_WEIGHT_FILES
    )
    return WeightSource(url=constants.ENDPOINT, cached=cached)


def pretrained_source(arch: str, tag: str, cache_dir: str | None) -> WeightSource | None:
    """Describe the weights of an open_clip pretrained tag, or ``None`` when open_clip knows no source."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
    url = str(cfg.get("url") or "")
    if url:  # open_clip prefers a direct URL over the hub and caches it under ~/.cache/clip
        folder = cache_dir or os.path.expanduser("~/.cache/clip")
        return WeightSource(url=url, cached=os.path.isfile(os.path.join(folder, os.path.basename(url))))
    hub = str(cfg.get("hf_hub") or "")
    if hub:
        repo_id = "/".join(hub.strip("/").split("/")[:2])
        return hf_repo_source(repo_id, cache_dir)
    return None


@contextmanager
def hub_offline() -> Iterator[None]:
    """Run huggingface_hub in offline mode (cache only) for the duration of the block."""
    from huggingface_hub import constants

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' per-file "Loading weights" progress bars while a model loads.

    catalens reports model loading in one line of its own; the bars are transformers' process-wide setting,
    so the previous state is restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def cache_locations(cache_dir: str | None) -> list[str]:
    """Where Hugging Face weights were looked for: ``cache_dir``, or the hub cache (``HF_HOME``)."""
    from huggingface_hub import constants

    return [cache_dir or str(constants.HF_HUB_CACHE)]


def is_download_failure(error: BaseException) -> bool:
    """True when an exception chain says weights could not be fetched (as opposed to being broken)."""
    seen: BaseException | None = error
    while seen is not None:
        module = type(seen).__module__
        if module.startswith(("huggingface_hub", "requests", "httpx", "urllib")):
            return True
        if isinstance(seen, ConnectionError | TimeoutError):
            return True
        if any(marker in str(seen) for marker in DOWNLOAD_FAILURE_MARKERS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def root_cause(error: BaseException, limit: int = 200) -> str:
    """The first line of the innermost ``raise ... from`` cause, cut to ``limit`` characters."""
    root: BaseException = error
    while root.__cause__ is not None:
        root = root.__cause__
    return first_line(root)[:limit]
