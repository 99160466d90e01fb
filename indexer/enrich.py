"""The indexer's second pass: captions and text read in images, stored and made searchable by words.

It runs over an existing store, after the vectors are written and the index is published, so a slow
captioner never delays vector search: ``catalens index --caption`` publishes first and enriches after, and
``catalens caption`` / ``catalens ocr`` (re)do a store on their own. The pass is incremental and resumable:
each item is done once per captioner (or OCR engine) and image, each batch is committed in one transaction
that also updates the full-text index, and an interrupted run picks up the items still missing.

Images are read and decoded in a thread pool one batch ahead of the model; an image that cannot be read
is recorded against its item with the reason, and the batch goes on. With ``EnrichOptions.ray`` the reading
and the model run on a Ray cluster instead (:mod:`catalens.indexer.distributed.enrich_pass`) while this
process stays the one writer and commits each batch as it streams back, through the same :func:`_commit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from PIL import Image

from catalens.indexer.errors import ItemError
from catalens.indexer.fetch import Fetcher, FetchOptions
from catalens.indexer.images import decode_image
from catalens.indexer.pipeline import ProgressSink, default_workers
from catalens.indexer.store import (
    CatalogStore,
    Enrichment,
    EnrichmentKind,
    EnrichmentTask,
    FailedItem,
    vector_caption_spec,
)
from catalens.indexer.weights_check import require_same_weights
from catalens.models import LoadOptions, default_registry
from catalens.models.captioning import (
    Caption,
    Captioner,
    CaptionOptions,
    VectorCaptioner,
    caption_run_spec,
    load_captioner,
    parse_captioner_spec,
)
from catalens.models.ocr import OcrEngine, OcrFailedError, OcrOptions, OcrResult, load_ocr

if TYPE_CHECKING:
    from catalens.indexer.distributed.enrich_pass import RayEnrichJob
    from catalens.indexer.distributed.options import RayOptions


@dataclass(frozen=True)
class EnrichOptions:
    """How to run a caption or OCR pass.

    Attributes:
        redo: process every indexed item again, even those already done by this spec.
        batch_size: images per captioner call (``None``: the captioner's default); OCR reads one at a time.
        workers: read-and-decode threads.
        fetch: limits for reading files and URLs.
        ray: run the image passes on Ray (reading in CPU tasks, the captioner or OCR engine in an actor
            pool); ``None`` runs them here. The attribute captioner works from stored vectors and always
            runs here.
    """

    redo: bool = False
    batch_size: int | None = None
    workers: int = field(default_factory=default_workers)
    fetch: FetchOptions = field(default_factory=FetchOptions)
    ray: RayOptions | None = None


@dataclass
class EnrichReport:
    """The summary of one pass."""

    store: str
    kind: EnrichmentKind
    spec: str
    done: int = 0
    up_to_date: int = 0
    failed: list[FailedItem] = field(default_factory=list)
    seconds: float = 0.0
    ray: dict[str, Any] | None = None

    @property
    def items_per_second(self) -> float:
        return (self.done + len(self.failed)) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; ``ray`` (the cluster and per-node throughput) only for a pass that ran on Ray."""
        payload = {
            "store": self.store,
            "kind": self.kind,
            "spec": self.spec,
            "done": self.done,
            "up_to_date": self.up_to_date,
            "failed": [{"id": f.id, "source": f.source, "reason": f.reason} for f in self.failed],
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 2),
        }
        return {**payload, "ray": self.ray} if self.ray is not None else payload


def enrich_store(
    path: str | Path,
    *,
    captioner: str | None = None,
    caption_options: CaptionOptions | None = None,
    ocr: str | None = None,
    ocr_options: OcrOptions | None = None,
    options: EnrichOptions | None = None,
    progress: ProgressSink | None = None,
) -> list[EnrichReport]:
    """Run the caption pass, then the OCR pass, over the store at ``path``, under its writer lock.

    Each model is loaded only when its pass starts (the captioner once the lock is held, the OCR engine
    after the captions are committed), so a slow or broken second model never costs the first pass's work.
    With ``options.ray`` the models load in Ray actors instead, and both passes share one Ray session; the
    attribute captioner, which works from the stored vectors, still runs here.

    Args:
        path: the store directory.
        captioner: a captioner spec (see ``catalens captioners``), or ``None`` for no caption pass.
        caption_options: the captioner's device and generation options.
        ocr: an OCR engine spec, or ``None`` for no OCR pass.
        ocr_options: the OCR engine's thresholds and languages.
        options: how to run the passes (redo, batch size, workers).
        progress: where progress goes.

    Returns:
        One report per pass run, captions first.

    Raises:
        StoreError: the store is missing, unreadable or locked by another writer.
        ModelError: a captioner or OCR engine cannot be loaded, or failed on a whole batch.
        RayUnavailableError: ``options.ray`` was given and Ray is not installed.
        RayRunError: Ray cannot be started or joined, or a pass on it failed as a whole (a model that does
            not load in the actors too); the batches committed before stay.
    """
    reports: list[EnrichReport] = []
    if not captioner and not ocr:
        return reports
    options = options or EnrichOptions()
    ray = options.ray
    captions_on_ray = bool(captioner) and ray is not None and parse_captioner_spec(str(captioner)).kind != "attributes"
    if captions_on_ray or (ray is not None and ocr):
        from catalens.indexer.distributed.session import import_ray

        import_ray()  # without Ray, say how to install it before anything else, even when nothing is due
    with CatalogStore.open(path) as store, store.writer_lock(), ExitStack() as stack:
        if ray is not None and captions_on_ray and ocr:
            from catalens.indexer.distributed.session import RaySession

            # Each pass opens its own session when it has work; this one makes them share one Ray, started once.
            stack.enter_context(RaySession(ray))
        if captioner and captions_on_ray:
            reports.append(_caption_on_ray(store, captioner, caption_options or CaptionOptions(), options, progress))
        elif captioner:
            if ray is not None and progress is not None:
                progress.note(f"{captioner} captions the stored vectors: it runs here, not on Ray")
            loaded = load_store_captioner(store, captioner, caption_options)
            reports.append(caption_store(store, loaded, options, progress))
        if ocr and ray is not None:
            reports.append(_ocr_on_ray(store, ocr, ocr_options or OcrOptions(), options, progress))
        elif ocr:
            reports.append(ocr_store(store, load_ocr(ocr, ocr_options), options, progress))
    return reports


def load_store_captioner(store: CatalogStore, spec: str, options: CaptionOptions | None = None) -> Captioner:
    """Load the captioner ``spec`` names, for captioning ``store``.

    The attribute captioner classifies the store's stored vectors, so it needs the store's own image–text
    model (loaded here on ``options.device``); the generative captioners need no encoder.

    Raises:
        UnknownModelError: the spec names no captioner.
        ModelError: the captioner or the store's model cannot be loaded.
    """
    options = options or CaptionOptions()
    parsed = parse_captioner_spec(spec)
    encoder = None
    if parsed.kind == "attributes":
        encoder = default_registry().load(store.manifest.model, LoadOptions(device=options.device))
        require_same_weights(store.manifest, str(store.path), encoder)
    return load_captioner(parsed, options, encoder=encoder)


def caption_store(
    store: CatalogStore,
    captioner: Captioner,
    options: EnrichOptions | None = None,
    progress: ProgressSink | None = None,
) -> EnrichReport:
    """Caption every indexed item that ``captioner`` has not captioned for its current image.

    A captioner that works from embeddings (the attribute captioner) reads the stored vectors instead of
    the images. The caller holds the store's writer lock.

    Raises:
        ModelError: the captioner failed on a whole batch (a broken model, out of memory).
    """
    options = options or EnrichOptions()
    spec = recorded_caption_spec(captioner, store)
    if isinstance(captioner, VectorCaptioner):

        def from_vectors(tasks: Sequence[EnrichmentTask]) -> list[Enrichment | str]:
            keys, vectors = store.vectors_for(t.key for t in tasks)
            row = {int(k): i for i, k in enumerate(keys)}
            captions = captioner.caption_vectors(vectors) if len(keys) else []
            return [
                _caption(spec, t, captions[row[t.key]]) if t.key in row else "no vector for the store's model"
                for t in tasks
            ]

        return _run(store, "caption", spec, options, progress, options.batch_size or 256, from_vectors, None)

    def from_images(tasks: Sequence[EnrichmentTask], images: Sequence[Image.Image]) -> list[Enrichment | str]:
        return [_caption(spec, t, c) for t, c in zip(tasks, captioner.caption(images), strict=True)]

    batch = options.batch_size or captioner.default_batch_size
    return _run(store, "caption", spec, options, progress, batch, None, from_images)


def ocr_store(
    store: CatalogStore,
    engine: OcrEngine,
    options: EnrichOptions | None = None,
    progress: ProgressSink | None = None,
) -> EnrichReport:
    """Read the text in every indexed item's image that ``engine`` has not read yet (writer lock held)."""
    options = options or EnrichOptions()
    spec = recorded_ocr_spec(engine)

    def read(tasks: Sequence[EnrichmentTask], images: Sequence[Image.Image]) -> list[Enrichment | str]:
        results: list[Enrichment | str] = []
        for task, image in zip(tasks, images, strict=True):
            try:
                results.append(_ocr(spec, task, engine.read(image)))
            except OcrFailedError as e:  # this image broke the engine; the next one may not
                results.append(e.item_reason)
        return results

    return _run(store, "ocr", recorded_ocr_spec(engine), options, progress, 8, None, read)


def _caption_on_ray(
    store: CatalogStore, spec: str, caption: CaptionOptions, options: EnrichOptions, progress: ProgressSink | None
) -> EnrichReport:
    """:func:`caption_store` with the generative captioner ``spec`` loaded in Ray actors (``options.ray``)."""
    from catalens.indexer.distributed.enrich_pass import caption_job

    assert options.ray is not None
    recorded = planned_caption_spec(spec, caption)
    job = caption_job(
        spec, recorded, caption, options.batch_size, options.ray, options.fetch, lambda t, c: _caption(recorded, t, c)
    )
    return _run(store, "caption", recorded, options, progress, job.batch_size or 8, None, None, job)


def _ocr_on_ray(
    store: CatalogStore, spec: str, ocr: OcrOptions, options: EnrichOptions, progress: ProgressSink | None
) -> EnrichReport:
    """:func:`ocr_store` with the OCR engine ``spec`` loaded in Ray actors (``options.ray``)."""
    from catalens.indexer.distributed.enrich_pass import ocr_job

    assert options.ray is not None
    recorded = planned_ocr_spec(spec, ocr)
    job = ocr_job(spec, recorded, ocr, options.ray, options.fetch, lambda t, r: _ocr(recorded, t, r))
    return _run(store, "ocr", recorded, options, progress, job.batch_size or 8, None, None, job)


def recorded_caption_spec(captioner: Captioner, store: CatalogStore) -> str:
    """The spec stored with captions: whatever changes the captions is in it, so a change means re-captioning.

    An embedding-based captioner's output depends on the store's model and its weights; a generative captioner's on its
    generation options (its ``run_spec``, when it has one).
    """
    if isinstance(captioner, VectorCaptioner):
        return vector_caption_spec(captioner.spec, store.manifest.model_key)
    return str(getattr(captioner, "run_spec", captioner.spec))


def planned_caption_spec(spec: str, options: CaptionOptions) -> str:
    """The spec a generative captioner loaded from ``spec`` with ``options`` records, without loading it.

    A Ray pass asks the store for the due items before any actor has loaded the model, so it needs the
    recorded spec up front (the actors check that they agree).
    """
    return caption_run_spec(parse_captioner_spec(spec).canonical, options)


def recorded_ocr_spec(engine: OcrEngine) -> str:
    """The spec stored with OCR text: the engine, plus the settings that change what it keeps when not default."""
    return _ocr_spec(engine.spec, getattr(engine, "options", None))


def planned_ocr_spec(spec: str, options: OcrOptions) -> str:
    """:func:`recorded_ocr_spec` of the engine ``spec`` names with ``options``, without loading the engine.

    Raises:
        UnknownModelError: the spec names no OCR engine.
    """
    from catalens.models.ocr import parse_ocr_spec

    return _ocr_spec(parse_ocr_spec(spec), options)


def _ocr_spec(spec: str, options: OcrOptions | None) -> str:
    if options is None:
        return spec
    defaults = OcrOptions()
    changed = {
        name: ",".join(value) if isinstance(value, tuple) else value
        for name in ("min_confidence", "languages")
        if (value := getattr(options, name)) != getattr(defaults, name)
    }
    return f"{spec}?{urlencode(changed)}" if changed else spec


def _caption(spec: str, task: EnrichmentTask, caption: Caption) -> Enrichment:
    return Enrichment(
        "caption", spec, task.content_hash, caption.text, {"tags": dict(caption.tags), "scores": dict(caption.scores)}
    )


def _ocr(spec: str, task: EnrichmentTask, result: OcrResult) -> Enrichment:
    return Enrichment("ocr", spec, task.content_hash, result.text, result.to_data())


VectorStep = Callable[[Sequence[EnrichmentTask]], list[Enrichment | str]]
ImageStep = Callable[[Sequence[EnrichmentTask], Sequence[Image.Image]], list[Enrichment | str]]


def _run(
    store: CatalogStore,
    kind: EnrichmentKind,
    spec: str,
    options: EnrichOptions,
    progress: ProgressSink | None,
    batch_size: int,
    vector_step: VectorStep | None,
    image_step: ImageStep | None,
    ray_job: RayEnrichJob | None = None,
) -> EnrichReport:
    """Process the due items batch by batch; each result is an :class:`Enrichment` or a failure reason.

    The due items come from the store in every case, so a run on Ray that was interrupted resumes exactly
    like a local one: the items committed are not due any more.
    """
    started = time.perf_counter()
    report = EnrichReport(str(store.path), kind, spec)
    total = store.status_counts()["indexed"]
    tasks = store.enrichment_tasks(kind, spec, redo=options.redo)
    report.up_to_date = total - len(tasks)
    if progress is not None:
        progress.start(f"{kind} ({spec})" if ray_job is None else f"{kind} ({spec}) on Ray", len(tasks))
    batches = [tasks[i : i + batch_size] for i in range(0, len(tasks), batch_size)]
    try:
        if ray_job is not None and tasks:
            stream = ray_job.stream(tasks, progress)
            try:
                for streamed, outcomes in stream:
                    _commit(store, streamed, outcomes, report, progress)
            finally:
                report.ray = stream.summary()
        elif vector_step is not None:
            for batch in batches:
                _commit(store, batch, vector_step(batch), report, progress)
        elif image_step is not None:
            with Fetcher(options.fetch) as fetcher, ThreadPoolExecutor(options.workers) as pool:
                for batch, decoded in _decoded_batches(batches, fetcher, pool):
                    results: dict[int, Enrichment | str] = {}
                    readable: list[EnrichmentTask] = []
                    images: list[Image.Image] = []
                    for task, image in zip(batch, decoded, strict=True):
                        if isinstance(image, str):
                            results[task.key] = image
                        else:
                            readable.append(task)
                            images.append(image)
                    if readable:
                        results.update(zip((t.key for t in readable), image_step(readable, images), strict=True))
                    _commit(store, batch, [results[t.key] for t in batch], report, progress)
    finally:
        if progress is not None:
            progress.finish()
        report.seconds = time.perf_counter() - started
    return report


def _decoded_batches(
    batches: list[list[EnrichmentTask]], fetcher: Fetcher, pool: ThreadPoolExecutor
) -> Iterator[tuple[list[EnrichmentTask], list[Image.Image | str]]]:
    """Yield each batch with its images (or failure reasons), decoding the next batch meanwhile."""

    def load(task: EnrichmentTask) -> Image.Image | str:
        try:
            return decode_image(fetcher.read(task.source), source=task.source).image
        except ItemError as e:
            return e.reason

    pending: list[Future[Image.Image | str]] | None = None
    for i, batch in enumerate(batches):
        current = pending if pending is not None else [pool.submit(load, t) for t in batch]
        pending = [pool.submit(load, t) for t in batches[i + 1]] if i + 1 < len(batches) else None
        yield batch, [f.result() for f in current]


def _commit(
    store: CatalogStore,
    batch: Sequence[EnrichmentTask],
    results: Sequence[Enrichment | str],
    report: EnrichReport,
    sink: ProgressSink | None,
) -> None:
    rows: list[tuple[int, Enrichment]] = []
    for task, result in zip(batch, results, strict=True):
        if isinstance(result, str):
            report.failed.append(FailedItem(task.id, task.source, result))
            rows.append((task.key, Enrichment(report.kind, report.spec, task.content_hash, "", {}, error=result)))
        else:
            report.done += 1
            rows.append((task.key, result))
    store.write_enrichments(rows)
    if sink is not None:
        sink.advance(len(batch))
