"""The caption and OCR passes on Ray: the driver's side, and what it hands back to the enrichment pass.

The driver (``_run`` in :mod:`catalens.indexer.enrich`) asks the store for the due items exactly as a local pass
does, streams them through Ray (reading and decoding in CPU tasks, the captioner or OCR engine in an actor
pool, :mod:`catalens.indexer.distributed.enrich_stages`) and commits each batch as it comes back, with the
same ``_commit``: one writer, and an interrupted run resumes without duplicates because the items committed
are no longer due. The actors send back text and JSON; the driver builds the stored rows from them with the
local pass's own helpers, so a store captioned on Ray holds the rows a local run would have written.

The attribute captioner works from the stored vectors, not from images: it always runs on the driver.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from catalens.indexer.distributed.embed_pass import READ_THREADS
from catalens.indexer.distributed.enrich_stages import CaptionActor, OcrActor
from catalens.indexer.distributed.options import RayOptions
from catalens.indexer.distributed.reach import explain_unreadable
from catalens.indexer.distributed.stages import DONE, ModelActor, read_batch
from catalens.indexer.distributed.stream import PassPlan, RayPass
from catalens.indexer.errors import RayRunError
from catalens.indexer.fetch import FetchOptions
from catalens.indexer.progress import NoProgress, ProgressSink
from catalens.indexer.store import Enrichment, EnrichmentKind, EnrichmentTask
from catalens.models.captioning import Caption, CaptionOptions
from catalens.models.ocr import OcrOptions, OcrResult

#: Items per read task and per actor call when neither the pass nor the captioner names a batch size: the
#: captioner still splits a call into its own (device-dependent) batches, so this only sets the granularity.
CPU_BATCH, GPU_BATCH = 8, 64

#: Builds the stored row from an actor's output: the task, the text and the JSON detail.
Build = Callable[[EnrichmentTask, str, str], Enrichment]
Results = tuple[list[EnrichmentTask], list[Enrichment | str]]


@dataclass(frozen=True)
class RayEnrichJob:
    """One caption or OCR pass to run on Ray.

    Attributes:
        kind: ``caption`` or ``ocr``.
        spec: the spec the results are recorded under (the actors must load a model that records the same).
        actor: the model actor's class, and ``actor_kwargs`` its constructor's keyword arguments.
        batch_size: items per read task and per actor call; ``None``: ``CPU_BATCH`` or ``GPU_BATCH``.
        build: turns an actor's text and JSON into the row to store (driver side; never sent to Ray).
        ray: where and how wide to run.
        fetch: limits for reading files and URLs, on every worker.
    """

    kind: EnrichmentKind
    spec: str
    actor: type[ModelActor]
    actor_kwargs: dict[str, Any]
    batch_size: int | None
    build: Build
    ray: RayOptions
    fetch: FetchOptions

    def stream(self, tasks: Sequence[EnrichmentTask], progress: ProgressSink | None) -> EnrichStream:
        """The results for ``tasks`` as they stream in; iterate it to run the pass."""
        return EnrichStream(self, tasks, progress or NoProgress())


class EnrichStream(RayPass[Results]):
    """The results of a caption or OCR pass on Ray, batch by batch: its tasks and, per task, the row to store or
    the failure reason; :meth:`summary` has the per-node figures.

    Iterating also raises :class:`RayRunError` when the actors record another spec than the one planned.
    """

    def __init__(self, job: RayEnrichJob, tasks: Sequence[EnrichmentTask], sink: ProgressSink) -> None:
        self.tasks = list(tasks)
        super().__init__(job.ray, [task.source for task in self.tasks], sink)
        self.job = job

    def plan(self, gpus_each: float) -> PassPlan:
        return PassPlan(
            sources=self.sources,
            known=[""] * len(self.sources),  # every image is needed, whatever its hash
            read=read_batch,
            # No draft size and no pixel budget: decoded as the local pass decodes (decode_image's defaults).
            read_kwargs={"draft_size": None, "max_pixels": None, "fetch": self.job.fetch, "threads": READ_THREADS},
            actor=self.job.actor,
            actor_kwargs=self.job.actor_kwargs,
            batch_size=self.job.batch_size or (GPU_BATCH if gpus_each else CPU_BATCH),
        )

    def results(self, batch: dict[str, np.ndarray]) -> Results:
        tasks: list[EnrichmentTask] = []
        results: list[Enrichment | str] = []
        for row, index in enumerate(batch["index"]):
            task = self.tasks[int(index)]
            tasks.append(task)
            if batch["status"][row] == DONE:
                recorded = str(batch["spec"][row]) if "spec" in batch else self.job.spec
                if recorded != self.job.spec:
                    raise RayRunError(
                        f"the Ray actors' {self.job.kind} model records its results as {recorded!r}, "
                        f"this process planned {self.job.spec!r}: nothing of this batch was stored"
                    )
                results.append(self.job.build(task, str(batch["text"][row]), str(batch["data"][row])))
            else:
                reason = str(batch["reason"][row]) or "not processed on Ray"
                results.append(explain_unreadable(task.source, reason, str(batch["read_host"][row])))
        return tasks, results


def caption_job(
    spec: str,
    recorded: str,
    options: CaptionOptions,
    batch_size: int | None,
    ray: RayOptions,
    fetch: FetchOptions,
    build: Callable[[EnrichmentTask, Caption], Enrichment],
) -> RayEnrichJob:
    """The caption pass of the generative captioner ``spec``, recorded as ``recorded``, on Ray.

    ``build`` turns a caption into the row to store (the local pass's own helper, so the rows are identical).
    The attribute captioner is not for Ray: it reads the stored vectors, so it runs on the driver.
    """

    def from_json(task: EnrichmentTask, text: str, data: str) -> Enrichment:
        detail = json.loads(data)
        return build(task, Caption(text, detail["tags"], detail["scores"]))

    threads = max(1, int(ray.cpus_per_actor))
    kwargs = {"spec": spec, "options": options, "threads": threads}
    return RayEnrichJob(
        "caption", recorded, CaptionActor, kwargs, batch_size or options.batch_size, from_json, ray, fetch
    )


def ocr_job(
    spec: str,
    recorded: str,
    options: OcrOptions,
    ray: RayOptions,
    fetch: FetchOptions,
    build: Callable[[EnrichmentTask, OcrResult], Enrichment],
) -> RayEnrichJob:
    """The OCR pass of the engine ``spec``, recorded as ``recorded``, on Ray (``build`` as in :func:`caption_job`).

    The engine reads one image at a time; the batch size only sets how many items a task and a commit hold.
    """

    def from_json(task: EnrichmentTask, text: str, data: str) -> Enrichment:
        return build(task, OcrResult.from_data(json.loads(data)))

    kwargs = {"spec": spec, "options": options}
    return RayEnrichJob("ocr", recorded, OcrActor, kwargs, CPU_BATCH, from_json, ray, fetch)


__all__ = ["EnrichStream", "RayEnrichJob", "caption_job", "ocr_job"]
