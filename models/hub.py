"""Fail fast and honestly when weights live on a hub this machine cannot reach.

huggingface_hub retries an unreachable host with exponential backoff (about 45 s per file) before it gives
up, even when the file is already cached. We probe the host once with a short timeout instead: weights in
the cache are then loaded in offline mode, and missing weights give a clear error at once.

This is the one hub helper every backend uses: the cache checks (:func:`cached_file`, :func:`cached_any`), the
reachability probe and its timeout (:func:`why_not_downloadable`), the text of a failed download
(:func:`download_failure`), and the load flow of transformers-family models (:func:`loading_from_hub`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from catalens.models.errors import ModelError, ModelLoadError, ModelUnavailableError

HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# Messages of loaders (open_clip) that wrap a failed download in a generic exception.
DOWNLOAD_FAILURE_MARKERS = ("Failed to download", "Failed initial config/weights load from HF Hub")
#: How long the one connection probe waits for a weights host before it is declared unreachable.
PROBE_TIMEOUT_S = 3.0
OFFLINE_CAUSE = "HF_HUB_OFFLINE=1 is set, so no download was attempted"


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


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
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


def why_not_downloadable(url: str | None = None) -> str | None:
    """Why weights cannot be downloaded from ``url`` (the hub by default) right now, or ``None`` when they can.

    Checks ``HF_HUB_OFFLINE``, then probes the host once with :data:`PROBE_TIMEOUT_S`, instead of letting
    huggingface_hub retry an unreachable host for about 45 s per file.
    """
    if offline_requested():
        return OFFLINE_CAUSE
    if url is None:
        from huggingface_hub import constants

        url = constants.ENDPOINT
    if not reachable(url, timeout=PROBE_TIMEOUT_S):
        return f"{urlparse(url).hostname} cannot be reached from this machine"
    return None


def cached_file(repo_id: str, filename: str, cache_dir: str | None) -> Path | None:
    """The local copy of one file of a hub repository, or ``None`` when the cache has none."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def cached_any(repo_id: str, filenames: Sequence[str], cache_dir: str | None) -> bool:
    """Whether the cache holds at least one of ``filenames`` of a hub repository (e.g. one weights format)."""
    return any(cached_file(repo_id, name, cache_dir) is not None for name in filenames)


def hf_repo_source(repo_id: str, cache_dir: str | None) -> WeightSource:
    """Describe the weights of an open_clip repository on the Hugging Face hub."""
    from huggingface_hub import constants

    return WeightSource(url=constants.ENDPOINT, cached=cached_any(repo_id, HF_WEIGHT_FILES, cache_dir))


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


def download_failure(error: BaseException, *, cached: bool) -> str:
    """The cause to report when weights could not be had: a damaged cached copy, offline mode, or a download."""
    if cached:
        return f"the cached copy is incomplete or damaged: {root_cause(error)}"
    if offline_requested():
        return OFFLINE_CAUSE
    return f"download failed: {root_cause(error)}"


@contextmanager
def loading_from_hub(
    spec: str, *, local: bool, cached: bool, unavailable: Callable[[str], ModelUnavailableError]
) -> Iterator[None]:
    """Load a transformers-family model (in the block) from a local directory or the hub, failing fast and honestly.

    Local directories load as they are. A hub model in the cache loads in offline mode, without the network; any
    other hub model must be downloadable, which is checked once, before loading (see :func:`why_not_downloadable`).
    transformers' progress bars are hidden while the block runs.

    Args:
        spec: the canonical spec, for :class:`ModelLoadError`.
        local: whether the model is a local directory.
        cached: whether a hub model's files are all in the cache.
        unavailable: builds the family's "weights not available" error from a cause.

    Raises:
        ModelUnavailableError: (from ``unavailable``) a hub model cannot be downloaded, or its cached copy or its
            download failed. transformers reports a file it could neither find in the cache nor download as an
            ``OSError`` without the hub's exception in the chain, so for hub models an ``OSError`` counts, too.
        ModelLoadError: anything else went wrong while loading; typed model errors pass through as they are.
    """
    if not local and not cached:
        cause = why_not_downloadable()
        if cause is not None:
            raise unavailable(cause)
    try:
        with hub_offline() if cached and not local else nullcontext(), quiet_loading():
            yield
    except ModelError:
        raise
    except Exception as error:
        if not local and (isinstance(error, OSError) or is_download_failure(error)):
            raise unavailable(download_failure(error, cached=cached)) from error
        raise ModelLoadError(spec, f"{type(error).__name__}: {first_line(error)}") from error


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
