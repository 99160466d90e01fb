"""Inputs every Ray worker can read: checked before a pass, explained when an item fails on a node.

A Ray worker reads an item's image itself, so a local path has to be on storage every node mounts at the
same path (NFS, a shared disk), or the image has to be an http(s) URL. Before a pass, one tiny task per node
tries a sample of the local paths; a node that cannot read them is named in a note, and the run goes on:
each item that fails there is recorded as a per-item failure whose reason says why, never a hang.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from catalens.indexer.distributed.session import RaySession
from catalens.indexer.fetch import is_url

#: Local paths each node tries before a pass.
SAMPLE = 8
#: Seconds to wait for every node's answer; a node that does not answer in time is named, not waited for.
REACH_TIMEOUT_S = 60.0


def local_paths(sources: Sequence[str], limit: int = SAMPLE) -> list[str]:
    """Up to ``limit`` sources that are local paths, spread over the list."""
    paths = [s for s in sources if not is_url(s)]
    if len(paths) <= limit:
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]


def unreadable(paths: Sequence[str]) -> list[str]:
    """The paths this machine cannot open for reading (run on each node)."""
    return [p for p in paths if not os.access(p, os.R_OK)]


def check_reach(session: RaySession, sources: Sequence[str]) -> list[str]:
    """Notes naming each node that cannot read a sample of the pass's local paths (empty when all can)."""
    sample = local_paths(sources)
    if not sample:
        return []
    ray = session.ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(unreadable)
    asked = {
        node: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(sample)
        for node in session.hosts
    }
    ready, _ = ray.wait(list(asked.values()), num_returns=len(asked), timeout=REACH_TIMEOUT_S)
    notes = []
    for node, ref in asked.items():
        host = session.hosts[node]
        if ref not in ready:
            notes.append(f"Ray node {host} did not answer the input check within {REACH_TIMEOUT_S:.0f} s")
            continue
        missing = ray.get(ref)
        if missing:
            notes.append(
                f"Ray node {host} cannot read {len(missing)} of {len(sample)} sampled inputs (e.g. {missing[0]}): "
                "items read there will fail; local paths must be on storage every node mounts at the same path"
            )
    return notes


def explain_unreadable(source: str, reason: str, host: str) -> str:
    """The failure reason to record: a path this machine can read but a node could not says so."""
    if reason == "file not found" and not is_url(source) and os.access(source, os.R_OK):
        return (
            f"file not found on Ray node {host}, although the driver can read it: local paths must be on "
            "storage every node mounts at the same path"
        )
    return reason
