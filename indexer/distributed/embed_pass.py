"""The embedding pass on Ray: what the indexer's driver sends out and what comes back per batch.

The driver (:mod:`catalens.indexer.pipeline`) plans the run as it does locally and commits every batch
this module yields in one transaction; only reading, decoding and the model run on the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from catalens.indexer.distributed.options import RayOptions
from catalens.indexer.distributed.reach import explain_unreadable
from catalens.indexer.distributed.stages import DONE, FAILED, SAME, EmbedActor, read_batch
from catalens.indexer.distributed.stream import PassPlan, RayPass
from catalens.indexer.fetch import FetchOptions
from catalens.indexer.progress import ProgressSink

#: Fetch threads per read task: enough to overlap URL round trips, few enough for a small worker.
READ_THREADS = 8


@dataclass(frozen=True)
class EmbedJob:
    """The items to embed and how.

    Attributes:
        sources: each item's path or URL; results refer to items by their position here.
        known_hashes: per item, the content hash it already has a vector for (unchanged bytes are skipped).
        model: the canonical model spec every actor loads.
        device: the device spec the actors load it on (``auto`` takes the GPU Ray gives an actor).
        draft_size: the model's decode size (``decode_size``), so images are decoded no larger than needed.
        batch_size: images per read task and per forward pass.
        max_pixels: the decoder's pixel budget for formats decoded at full size.
        fetch: limits for reading files and URLs, on every worker.
    """

    sources: Sequence[str]
    known_hashes: Sequence[str | None]
    model: str
    device: str
    draft_size: int
    batch_size: int
    max_pixels: int | None
    fetch: FetchOptions


@dataclass(frozen=True)
class EmbeddedRow:
    """One item embedded on the cluster."""

    index: int
    content_hash: str
    width: int
    height: int
    vector: np.ndarray


@dataclass
class ResultBatch:
    """One batch of results, positions into :attr:`EmbedJob.sources`."""

    embedded: list[EmbeddedRow] = field(default_factory=list)
    same: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


class EmbedStream(RayPass[ResultBatch]):
    """The results of an embedding pass as they stream in; :meth:`summary` has the per-node figures."""

    def __init__(self, job: EmbedJob, options: RayOptions, sink: ProgressSink) -> None:
        super().__init__(options, job.sources, sink)
        self.job = job

    def plan(self, gpus_each: float) -> PassPlan:
        return PassPlan(
            sources=self.job.sources,
            known=[h or "" for h in self.job.known_hashes],
            read=read_batch,
            read_kwargs={
                "draft_size": self.job.draft_size,
                "max_pixels": self.job.max_pixels,
                "fetch": self.job.fetch,
                "threads": READ_THREADS,
            },
            actor=EmbedActor,
            actor_kwargs={
                "model": self.job.model,
                "device": self.job.device,
                "threads": max(1, int(self.options.cpus_per_actor)),
            },
            batch_size=self.job.batch_size,
        )

    def results(self, batch: dict[str, np.ndarray]) -> ResultBatch:
        results = ResultBatch()
        for row, index in enumerate(batch["index"]):
            status = batch["status"][row]
            if status == DONE:
                results.embedded.append(
                    EmbeddedRow(
                        int(index),
                        str(batch["content_hash"][row]),
                        int(batch["width"][row]),
                        int(batch["height"][row]),
                        np.asarray(batch["vector"][row], dtype=np.float32),
                    )
                )
            elif status == SAME:
                results.same.append(int(index))
            elif status == FAILED:
                source, host = self.job.sources[int(index)], str(batch["read_host"][row])
                results.failed.append((int(index), explain_unreadable(source, str(batch["reason"][row]), host)))
        return results


def embed_on_ray(job: EmbedJob, options: RayOptions, sink: ProgressSink) -> EmbedStream:
    """Embed ``job``'s items on Ray; iterate the result to run it (see :class:`EmbedStream`)."""
    return EmbedStream(job, options, sink)


__all__ = ["EmbedJob", "EmbedStream", "EmbeddedRow", "ResultBatch", "embed_on_ray"]
