"""The indexing pipeline: scan → skip unchanged → read and decode in a worker pool → embed in batches →
write each batch in one transaction → build and publish the FAISS index.

Decoding and preprocessing run in threads (Pillow and torch release the GIL for the heavy parts) and
overlap with batched inference in the calling thread; a bounded window of in-flight items keeps memory flat
however large the catalog. Every batch is committed before the next, so a killed run loses at most one
batch of work, and a re-run skips what was committed (no duplicates: item ids are unique in the store).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalens.indexer.errors import StoreModelMismatchError
from catalens.indexer.fetch import Fetcher
from catalens.indexer.lock import WriterLock
from catalens.indexer.options import IndexOptions, IndexReport, default_workers
from catalens.indexer.prepare import Decoded, SameContent, content_hash, read_item
from catalens.indexer.progress import NoProgress, ProgressSink
from catalens.indexer.publish import IndexGoals, publish_index
from catalens.indexer.records import ItemRecord, ScanProblem
from catalens.indexer.sources import Source, open_source
from catalens.indexer.store import LOCK_NAME, CatalogStore, EmbeddedItem, FailedItem, IndexState, ItemState
from catalens.indexer.vectors import DEFAULT_FACTORY, validate_factory
from catalens.indexer.vectors.auto import AUTO
from catalens.indexer.weights_check import check_store_weights
from catalens.models import DEFAULT_MODEL, ImageTextEncoder, LoadOptions, ModelRegistry, default_registry

DECODE_NICENESS = 10

__all__ = [
    "IndexOptions",
    "IndexReport",
    "ProgressSink",
    "content_hash",
    "default_workers",
    "index_catalog",
    "known_hash",
    "reindex",
]


@dataclass(frozen=True)
class _Ready:
    record: ItemRecord
    content_hash: str
    width: int
    height: int
    pixels: np.ndarray


@dataclass(frozen=True)
class _SameContent:
    record: ItemRecord


@dataclass(frozen=True)
class _Failed:
    record: ItemRecord
    reason: str


_Prepared = _Ready | _SameContent | _Failed


def index_catalog(
    source: str | os.PathLike[str] | Source,
    store_path: str | os.PathLike[str],
    options: IndexOptions | None = None,
    progress: ProgressSink | None = None,
    registry: ModelRegistry | None = None,
    encoder: ImageTextEncoder | None = None,
) -> IndexReport:
    """Index a folder or manifest into a store, incrementally.

    Args:
        source: a folder, a CSV/JSONL/Parquet manifest, or a :class:`Source`.
        store_path: the store directory (created when missing).
        options: model, index and throughput options.
        progress: receives progress events.
        registry: the model registry (the default one when ``None``).
        encoder: an already loaded model to use instead of loading ``options.model`` (a service that
            holds one, a benchmark comparing against the bare model); its spec is the one recorded.

    Returns:
        The run's summary; per-item failures are listed in it, not raised.

    Raises:
        SourceError: the source as a whole cannot be read.
        StoreLockedError: another process is writing to the store.
        StoreModelMismatchError: the store holds another model's vectors and ``rebuild`` is off
            (:class:`StoreWeightsMismatchError`: the same spec, but its weights changed since).
        StoreVersionError, StoreCorruptError: the store cannot be opened.
        IndexBuildError: the FAISS factory string is invalid or cannot be trained.
        ModelError: the model cannot be loaded.
        RayUnavailableError, RayRunError: ``options.ray`` is set and Ray is missing, unreachable or failed (the
            batches committed before a failure stay, and a re-run goes on from them).
    """
    options = options or IndexOptions()
    if options.ray is not None:
        from catalens.indexer.distributed.session import import_ray

        import_ray()  # without Ray, say how to install it before anything is scanned or written
    sink = progress or NoProgress()
    registry = registry or default_registry()
    catalog = source if not isinstance(source, str | os.PathLike) else open_source(source)
    root = Path(store_path).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    with WriterLock(root / LOCK_NAME, str(root)):
        store = CatalogStore.open(root) if CatalogStore.exists(root) else None
        try:
            # On Ray the actors hold the model; this process loads it on its CPU only to learn its shape.
            load_options = LoadOptions(device="cpu" if options.ray is not None else options.device)
            wanted = options.model or (None if store is not None else DEFAULT_MODEL)
            note: str | None = None
            if encoder is not None:
                requested: str | None = encoder.spec
            elif wanted:
                parsed, note = registry.resolve(wanted, load_options)
                requested = parsed.canonical
            else:
                requested = None
            if note:
                sink.note(note)
            if store is not None and requested and requested != store.manifest.model and not options.rebuild:
                raise StoreModelMismatchError(str(root), store.manifest.model, requested)
            spec = requested or (store.manifest.model if store else DEFAULT_MODEL)
            factory = options.index_factory or (store.manifest.index_factory if store else DEFAULT_FACTORY)
            if store is not None:
                _validate(factory, store.manifest.dim)
            if encoder is None:
                encoder = registry.load(spec, load_options)
            _validate(factory, encoder.dim)
            if store is None:
                store = CatalogStore.create(root, encoder.spec, encoder.dim, factory, encoder.weights_digest)
            elif options.rebuild:
                store.reset_model(encoder.spec, encoder.dim, encoder.weights_digest)
            elif weights_note := check_store_weights(store, encoder, options.fetch).note:
                sink.note(weights_note)
            report = _Run(catalog, store, encoder, options, sink, factory).execute()
            report.model_note = note
            return report
        finally:
            if store is not None:
                store.close()


def reindex(
    store_path: str | os.PathLike[str],
    index_factory: str | None = None,
    progress: ProgressSink | None = None,
    goals: IndexGoals | None = None,
) -> IndexState:
    """Publish a new index generation from the store's SQLite vectors alone, measured and tuned.

    Args:
        index_factory: ``auto`` or a factory string to switch to; ``None`` keeps the store's choice.
        goals: memory budget, recall target and whether to retrain (the defaults if ``None``); the current
            generation is extended rather than rebuilt when that is sound (see :mod:`catalens.indexer.publish`).

    Raises:
        StoreNotFoundError, StoreLockedError, IndexBuildError.
    """
    sink = progress or NoProgress()
    with CatalogStore.open(store_path) as store, store.writer_lock():
        factory = index_factory or store.manifest.index_factory
        _validate(factory, store.manifest.dim)
        return publish_index(store, factory, sink, goals or IndexGoals())


def _validate(factory: str, dim: int) -> None:
    if factory != AUTO:
        validate_factory(factory, dim)


class _Run:
    """One indexing run over one source; holds the run's counters while it executes."""

    def __init__(
        self,
        catalog: Source,
        store: CatalogStore,
        encoder: ImageTextEncoder,
        options: IndexOptions,
        sink: ProgressSink,
        factory: str,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.encoder = encoder
        self.options = options
        self.sink = sink
        self.factory = factory
        self.batch_size = options.batch_size or encoder.default_batch_size
        self.report = IndexReport(store=str(store.path), model=encoder.spec, index_factory=factory)
        self.vectors_changed = options.rebuild

    def execute(self) -> IndexReport:
        started = time.perf_counter()
        records, problems = self._scan()
        existing = self.store.item_states(self.catalog.origin)
        work, touched = self._plan(records, existing)
        self._remove_missing(records, problems, existing)
        if touched:
            self.store.write_batch(touched=touched)
        self._record_problems(problems, existing)
        embed_started = time.perf_counter()
        self._process(work, existing)
        self.report.embed_seconds = time.perf_counter() - embed_started
        index = self.store.manifest.index
        asked = self.store.manifest.index_factory
        stale = index is None or asked != self.factory or not (self.store.path / index.file).is_file()
        if self.vectors_changed or stale:
            goals = IndexGoals(memory_budget=self.options.index_memory, target_recall=self.options.target_recall)
            state = publish_index(self.store, self.factory, self.sink, goals)
            self.report.generation = state.generation
            self.report.index_factory = state.factory
        else:
            self.report.generation = index.generation if index else None
        self.report.indexed_total = self.store.status_counts()["indexed"]
        self.report.elapsed_seconds = time.perf_counter() - started
        return self.report

    def _scan(self) -> tuple[list[ItemRecord], list[tuple[ScanProblem, bool]]]:
        """Enumerate the source; problems carry whether they may be stored (duplicates may not)."""
        self.sink.start("scanning", None)
        records: list[ItemRecord] = []
        problems: list[tuple[ScanProblem, bool]] = []
        seen: dict[str, str] = {}
        for entry in self.catalog.scan():
            self.sink.advance()
            if entry.id in seen:
                reason = f"duplicate id {entry.id!r} (first used by {seen[entry.id]}); this row was skipped"
                problems.append((ScanProblem(entry.id, entry.source, reason), False))
                continue
            seen[entry.id] = entry.source
            if isinstance(entry, ScanProblem):
                problems.append((entry, True))
            else:
                records.append(entry)
        self.sink.finish()
        return records, problems

    def _plan(
        self, records: list[ItemRecord], existing: dict[str, ItemState]
    ) -> tuple[list[ItemRecord], list[ItemRecord]]:
        """Split records into those whose bytes must be read and those that only need a metadata check."""
        work: list[ItemRecord] = []
        touched: list[ItemRecord] = []
        for record in records:
            state = existing.get(record.id)
            if state is None or state.status != "indexed" or not state.has_vector:
                work.append(record)
                continue
            same_file = record.stat is not None and state.stat == record.stat
            # URLs are treated as immutable: re-downloading a large catalog on every run would be worse.
            same_url = record.is_url and state.source == record.source
            if not (same_file or same_url):
                work.append(record)
            elif not state.same_metadata(record):
                touched.append(record)
                self.report.metadata_updated += 1
            else:
                self.report.unchanged += 1
        return work, touched

    def _remove_missing(
        self, records: list[ItemRecord], problems: list[tuple[ScanProblem, bool]], existing: dict[str, ItemState]
    ) -> None:
        present = {r.id for r in records} | {p.id for p, _ in problems}
        gone = [item_id for item_id in existing if item_id not in present]
        if gone:
            self.report.removed = self.store.delete_items(gone)
            self.vectors_changed = True

    def _record_problems(self, problems: list[tuple[ScanProblem, bool]], existing: dict[str, ItemState]) -> None:
        stored = []
        for problem, storable in problems:
            failure = FailedItem(problem.id, problem.source, problem.reason)
            self.report.failed.append(failure)
            if storable:
                record = ItemRecord(id=problem.id, source=problem.source, origin=self.catalog.origin)
                stored.append((failure, record))
        if stored:
            self.store.write_batch(failed=stored)
            self.vectors_changed |= any(_had_vector(existing.get(r.id)) for _, r in stored)

    def _process(self, work: list[ItemRecord], existing: dict[str, ItemState]) -> None:
        if not work:
            return
        self.sink.start("embedding" if self.options.ray is None else "embedding on Ray", len(work))
        if self.options.ray is not None:
            try:
                self._process_on_ray(work, existing)
            finally:
                self.sink.finish()
            return
        window = 2 * self.batch_size + 2 * self.options.workers
        ready: list[_Ready] = []
        same: list[ItemRecord] = []
        failed: list[_Failed] = []
        shares_cpu = self.encoder.device == "cpu"
        initializer = _yield_cpu_to_inference if shares_cpu else None
        with (
            Fetcher(self.options.fetch) as fetcher,
            ThreadPoolExecutor(self.options.workers, thread_name_prefix="decode", initializer=initializer) as pool,
        ):
            todo: Iterator[ItemRecord] = iter(work)
            pending: set[Future[_Prepared]] = set()

            def refill() -> None:
                for record in todo:
                    pending.add(pool.submit(self._prepare, fetcher, record, existing.get(record.id)))
                    if len(pending) >= window:
                        return

            refill()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                pending.difference_update(done)
                for future in done:
                    result = future.result()
                    if isinstance(result, _Ready):
                        ready.append(result)
                    elif isinstance(result, _SameContent):
                        same.append(result.record)
                    else:
                        failed.append(result)
                refill()
                while len(ready) >= self.batch_size or (not pending and (ready or same or failed)):
                    self._flush(ready[: self.batch_size], same, failed, existing)
                    del ready[: self.batch_size]
                    same, failed = [], []
                if len(same) + len(failed) >= self.batch_size:
                    self._flush([], same, failed, existing)
                    same, failed = [], []
        self.sink.finish()

    def _prepare(self, fetcher: Fetcher, record: ItemRecord, state: ItemState | None) -> _Prepared:
        """Worker-thread step: read, hash, decode and preprocess one item; never raises."""
        result = read_item(
            fetcher,
            record.source,
            known_hash(state),
            draft_size=self.encoder.decode_size,
            max_pixels=self.options.max_pixels,
        )
        if isinstance(result, SameContent):
            return _SameContent(record)
        if not isinstance(result, Decoded):
            return _Failed(record, result.reason)
        try:
            pixels = self.encoder.preprocess(result.image)
        except Exception as e:  # one bad image must never stop the run
            return _Failed(record, f"unexpected error while preprocessing: {type(e).__name__}: {e}")
        return _Ready(record, result.content_hash, result.width, result.height, pixels)

    def _flush(
        self, ready: list[_Ready], same: list[ItemRecord], failed: list[_Failed], existing: dict[str, ItemState]
    ) -> None:
        embedded: list[EmbeddedItem] = []
        if ready:
            vectors = self.encoder.encode_pixels(np.stack([r.pixels for r in ready]))
            embedded = [
                EmbeddedItem(r.record, r.content_hash, r.width, r.height, vector)
                for r, vector in zip(ready, vectors, strict=True)
            ]
        self._commit(embedded, same, [(f.record, f.reason) for f in failed], existing)

    def _commit(
        self,
        embedded: Sequence[EmbeddedItem],
        same: Sequence[ItemRecord],
        failed: Sequence[tuple[ItemRecord, str]],
        existing: dict[str, ItemState],
    ) -> None:
        """Write one batch of results in one transaction and count it; every path ends here."""
        failures = [(FailedItem(record.id, record.source, reason), record) for record, reason in failed]
        self.store.write_batch(embedded=list(embedded), failed=failures, touched=list(same))
        for item in embedded:
            if item.record.id in existing:
                self.report.updated += 1
            else:
                self.report.new += 1
        self.report.embedded += len(embedded)
        self.report.unchanged += len(same)
        self.report.failed.extend(f for f, _ in failures)
        if embedded or any(_had_vector(existing.get(record.id)) for record, _ in failed):
            self.vectors_changed = True
        self.sink.advance(len(embedded) + len(same) + len(failed))

    def _process_on_ray(self, work: list[ItemRecord], existing: dict[str, ItemState]) -> None:
        """Fetch and decode in Ray tasks, embed in a Ray actor pool; commit each batch here as it streams in."""
        from catalens.indexer.distributed import EmbedJob, embed_on_ray

        assert self.options.ray is not None
        job = EmbedJob(
            sources=[r.source for r in work],
            known_hashes=[known_hash(existing.get(r.id)) for r in work],
            model=self.encoder.spec,
            device=self.options.device,
            draft_size=self.encoder.decode_size,
            batch_size=self.batch_size,
            max_pixels=self.options.max_pixels,
            fetch=self.options.fetch,
        )
        stream = embed_on_ray(job, self.options.ray, self.sink)
        for batch in stream:
            embedded = [
                EmbeddedItem(work[row.index], row.content_hash, row.width, row.height, row.vector)
                for row in batch.embedded
            ]
            same = [work[i] for i in batch.same]
            failed = [(work[i], reason) for i, reason in batch.failed]
            self._commit(embedded, same, failed, existing)
        self.report.ray = stream.summary()


def _yield_cpu_to_inference() -> None:
    """Lower this decode thread's scheduling priority (Linux threads have their own nice value).

    When the model runs on the CPU it already keeps every core busy with its intra-op threads; decode
    threads competing at equal priority preempt those threads mid-barrier and cost far more than their own
    work. At a lower priority they decode in the model's idle moments instead and still keep the queue full.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)
    except (AttributeError, OSError):
        pass  # not Linux, or not permitted: run at normal priority


def _had_vector(state: ItemState | None) -> bool:
    return state is not None and state.has_vector


def known_hash(state: ItemState | None) -> str | None:
    """The content hash an item already has a vector for, if any: equal bytes are not embedded again."""
    if state is not None and state.status == "indexed" and state.has_vector:
        return state.content_hash
    return None
