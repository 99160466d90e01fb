"""The ``auto`` model spec: the best model this machine can actually load, and why.

``auto`` is the default for new stores. It resolves to the pretrained open_clip ViT-B-32 (LAION-2B) when
its weights are cached or the host that serves them answers, and to the shipped ``catalens-mini``
otherwise, so a fresh machine without hub access still gets semantic search. The reason is returned as
one line for the CLI to print; the store records the resolved spec, never ``auto``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from catalens.models.base import LoadOptions
from catalens.models.hub import offline_requested, pretrained_source, reachable

AUTO_SPEC = "auto"
PREFERRED_ARCH = "ViT-B-32"
PREFERRED_TAG = "laion2b_s34b_b79k"
PREFERRED = f"{PREFERRED_ARCH}:{PREFERRED_TAG}"
FALLBACK = "catalens-mini"


@dataclass(frozen=True)
class Resolution:
    """What ``auto`` became on this machine.

    Attributes:
        spec: the resolved spec string.
        reason: one line that says which model and why.
    """

    spec: str
    reason: str


def resolve_auto(options: LoadOptions | None = None, probe: Callable[[str], bool] = reachable) -> Resolution:
    """Resolve ``auto`` without downloading anything (at most one short connection probe).

    Args:
        options: the load options (their ``cache_dir`` is where cached weights are looked for).
        probe: tells whether a URL's host answers; injectable for tests.
    """
    cache_dir = options.cache_dir if options else None
    source = pretrained_source(PREFERRED_ARCH, PREFERRED_TAG, cache_dir)
    if source is not None and source.cached:
        return Resolution(PREFERRED, f"model auto → {PREFERRED}: its pretrained weights are cached")
    host = urlparse(source.url).hostname if source else None
    if source is None:
        why = f"open_clip knows no weights source for {PREFERRED}"
    elif offline_requested():
        why = f"{PREFERRED} is not cached and HF_HUB_OFFLINE is set"
    elif probe(source.url):
        return Resolution(PREFERRED, f"model auto → {PREFERRED}: {host} is reachable, its weights will be downloaded")
    else:
        why = f"{PREFERRED} is not cached and {host} is unreachable"
    return Resolution(FALLBACK, f"model auto → {FALLBACK} (shipped, offline): {why}")
