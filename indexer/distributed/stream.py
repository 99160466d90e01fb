"""The driver's side of a Ray pass: build the streaming dataset, hand results back batch by batch, count
each node's share, and turn Ray's failures into :class:`RayRunError`.

The dataset has two stages: ``read`` runs as plain Ray tasks holding ``read_cpus`` each (fetching and
decoding scale with the cluster's CPUs), ``model`` runs in a fixed pool of actors that each load the model
once and hold ``gpus_per_actor`` GPUs. Ray Data streams between them with bounded queues and hands finished
batches to the driver in completion order, so the driver commits while the cluster keeps working, and memory
stays flat however large the pass. Ray retries the tasks of a worker that dies, and restarts a dead actor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from catalens.indexer.distributed.options import RayOptions, RaySummary
from catalens.indexer.distributed.reach import check_reach
from catalens.indexer.distributed.session import RaySession
from catalens.indexer.distributed.stages import Batch
from catalens.indexer.errors import RayRunError
from catalens.indexer.progress import ProgressSink

Result = TypeVar("Result")

#: Batches per input block. One: each read task and each model call handles one block, whose results come
#: back as one output block, so the driver commits (and a killed run loses) one batch at a time.
BLOCK_BATCHES = 1


@dataclass(frozen=True)
class PassPlan:
    """What one pass sends through Ray.

    Attributes:
        sources: each item's local path or URL; a row's ``index`` is its position here.
        known: per item, a content hash the model's result is already stored for (``""``: none).
        read: the read stage's function and its keyword arguments.
        actor: the model actor's class and its constructor's keyword arguments.
        batch_size: items per read task and per model call.
    """

    sources: Sequence[str]
    known: Sequence[str]
    read: Callable[..., Batch]
    read_kwargs: dict[str, Any]
    actor: type
    actor_kwargs: dict[str, Any]
    batch_size: int


def stream_pass(session: RaySession, plan: PassPlan, summary: RaySummary) -> Iterator[Batch]:
    """Run ``plan`` on the cluster and yield its output batches as they finish, counting them per node.

    Raises:
        RayRunError: the pass failed as a whole (the model raised, the cluster went away); batches yielded
            before stay yours to keep.
    """
    import pyarrow as pa

    ray = session.ray
    actors, gpus_each = summary.actors, summary.gpus_per_actor
    step = plan.batch_size * BLOCK_BATCHES
    blocks = [
        pa.table(
            {
                "index": np.arange(start, min(start + step, len(plan.sources)), dtype=np.int64),
                "source": pa.array(plan.sources[start : start + step], pa.string()),
                "known": pa.array(plan.known[start : start + step], pa.string()),
            }
        )
        for start in range(0, len(plan.sources), step)
    ]
    if not blocks:
        return
    started = time.perf_counter()
    dataset = ray.data.from_arrow(blocks)
    dataset = dataset.map_batches(
        plan.read,
        fn_kwargs=plan.read_kwargs,
        batch_size=plan.batch_size,
        batch_format="numpy",
        num_cpus=session.options.read_cpus,
    )
    dataset = dataset.map_batches(
        plan.actor,
        fn_constructor_kwargs=plan.actor_kwargs,
        batch_size=plan.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=session.options.cpus_per_actor,
        num_gpus=gpus_each or None,
    )
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
            _count(batch, session, summary)
            summary.wall_seconds = time.perf_counter() - started
            yield batch
    except ray.exceptions.RayError as e:
        raise RayRunError(_cause(e)) from e
    finally:
        summary.wall_seconds = time.perf_counter() - started


def _count(batch: Batch, session: RaySession, summary: RaySummary) -> None:
    for node, host in zip(batch["read_node"], batch["read_host"], strict=True):
        summary.node(str(node), str(host)).read += 1
    done = batch["status"] == "done"
    for node, host, seconds in zip(
        batch["model_node"][done], batch["model_host"][done], batch["model_seconds"][done], strict=True
    ):
        counters = summary.node(str(node), str(host))
        counters.processed += 1
        counters.model_seconds += float(seconds)


def _cause(error: BaseException) -> str:
    """The innermost message of a Ray error (a user error inside a task arrives wrapped twice)."""
    cause: BaseException = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


class RayPass(Generic[Result]):
    """One pass on Ray as the driver sees it: iterate it to run the pass and get its results batch by batch.

    This class opens the session, sizes the actor pool, checks that every node can read the inputs and keeps
    the per-node figures (:meth:`summary`); a pass says what to send (:meth:`plan`) and what a finished batch
    means to it (:meth:`results`).
    """

    def __init__(self, options: RayOptions, sources: Sequence[str], sink: ProgressSink) -> None:
        self.options = options
        self.sources = sources
        self.sink = sink
        self._summary: RaySummary | None = None

    def __iter__(self) -> Iterator[Result]:
        """Run the pass, yielding each finished batch's results.

        Raises:
            RayUnavailableError: Ray is not installed.
            RayRunError: Ray cannot be started or joined, or the pass failed as a whole.
        """
        with RaySession(self.options) as session:
            actors, gpus_each = session.pool_size()
            self._summary = summary = RaySummary(session.address, actors, gpus_each)
            for note in check_reach(session, self.sources):
                self.sink.note(note)
            for batch in stream_pass(session, self.plan(gpus_each), summary):
                yield self.results(batch)

    def summary(self) -> dict[str, Any] | None:
        """The run's cluster and per-node throughput, once it has started."""
        return self._summary.to_dict() if self._summary is not None else None

    def plan(self, gpus_each: float) -> PassPlan:
        """What to send through Ray, given the GPUs each model replica holds."""
        raise NotImplementedError

    def results(self, batch: Batch) -> Result:
        """What one finished output batch means to the pass."""
        raise NotImplementedError
