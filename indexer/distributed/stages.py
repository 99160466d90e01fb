"""The code that runs on Ray's workers: reading and decoding in CPU tasks, the model in actors.

Both stages take and return Ray Data batches in NumPy format (a dict of equal-length columns) and never
raise for one bad item: a row that cannot be read carries ``status = "failed"`` and its reason, exactly as
the local pipeline records it (both call :func:`catalens.indexer.prepare.read_item`). Decoded images travel
from the read tasks to the model as raw RGB bytes at the reduced size the decoder produced, so the model's
preprocessing runs on the same pixels as in a local run and gives the same vectors.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from catalens.indexer.distributed.session import worker_identity
from catalens.indexer.fetch import Fetcher, FetchOptions
from catalens.indexer.prepare import Decoded, SameContent, read_item

Batch = dict[str, np.ndarray]

#: Row states after the read stage (``decoded``, ``same``, ``failed``) and after the model (``done``).
DECODED, SAME, FAILED, DONE = "decoded", "same", "failed", "done"


def read_batch(
    batch: Batch, *, draft_size: int | None, max_pixels: int | None, fetch: FetchOptions, threads: int
) -> Batch:
    """Fetch, hash and decode one batch of items in a thread pool (fetching is mostly waiting on I/O).

    Input columns: ``index``, ``source``, ``known`` (the content hash the item has a vector for, or ``""``).
    Output adds ``status``, ``reason``, ``content_hash``, ``width``, ``height`` (full size), ``raw``,
    ``raw_width``, ``raw_height`` (the decoded RGB pixels) and ``read_node``/``read_host``.
    """
    identity = worker_identity()
    sources = [str(s) for s in batch["source"]]
    known = [str(k) or None for k in batch["known"]]
    with Fetcher(fetch) as fetcher, ThreadPoolExecutor(max(1, threads)) as pool:
        results = list(
            pool.map(
                lambda source, digest: read_item(fetcher, source, digest, draft_size=draft_size, max_pixels=max_pixels),
                sources,
                known,
            )
        )
    n = len(results)
    status = np.empty(n, dtype=object)
    reason = np.full(n, "", dtype=object)
    digest = np.full(n, "", dtype=object)
    raw = np.full(n, b"", dtype=object)
    sizes = np.zeros((n, 4), dtype=np.int64)
    for row, result in enumerate(results):
        if isinstance(result, Decoded):
            image = result.image  # decode_image always gives RGB
            status[row], digest[row], raw[row] = DECODED, result.content_hash, image.tobytes()
            sizes[row] = (result.width, result.height, image.width, image.height)
        elif isinstance(result, SameContent):
            status[row] = SAME
        else:
            status[row], reason[row] = FAILED, result.reason
    return {
        "index": np.asarray(batch["index"], dtype=np.int64),
        "source": np.asarray(sources, dtype=object),
        "status": status,
        "reason": reason,
        "content_hash": digest,
        "width": sizes[:, 0],
        "height": sizes[:, 1],
        "raw": raw,
        "raw_width": sizes[:, 2],
        "raw_height": sizes[:, 3],
        "read_node": np.full(n, identity["node"], dtype=object),
        "read_host": np.full(n, identity["host"], dtype=object),
    }


def decoded_images(batch: Batch) -> list[tuple[int, Image.Image]]:
    """The rows of a read batch that were decoded, with their images rebuilt from the raw bytes."""
    return [
        (row, Image.frombytes("RGB", (int(batch["raw_width"][row]), int(batch["raw_height"][row])), batch["raw"][row]))
        for row in range(len(batch["status"]))
        if batch["status"][row] == DECODED
    ]


class ModelActor:
    """Base of the actors that hold one model each: identity, threads and the per-batch bookkeeping."""

    def __init__(self, threads: int) -> None:
        if threads >= 1:
            from catalens.models import use_cpu_threads

            use_cpu_threads(threads)
        self.identity = worker_identity()

    def finish(self, batch: Batch, done: list[int], started: float, extra: dict[str, np.ndarray]) -> Batch:
        """The output batch: every row kept (failures too), the raw pixels dropped, where and how long added."""
        n = len(batch["status"])
        status = np.asarray(batch["status"], dtype=object).copy()
        status[done] = DONE
        seconds = np.zeros(n, dtype=np.float64)
        if done:
            seconds[done] = (time.perf_counter() - started) / len(done)
        kept = {k: v for k, v in batch.items() if k not in ("raw", "raw_width", "raw_height", "status")}
        return {
            **kept,
            **extra,
            "status": status,
            "model_node": np.full(n, self.identity["node"], dtype=object),
            "model_host": np.full(n, self.identity["host"], dtype=object),
            "model_seconds": seconds,
        }


class EmbedActor(ModelActor):
    """Holds one image–text model (on the GPU Ray gave it, if any) and embeds the decoded rows of each batch."""

    def __init__(self, model: str, device: str, threads: int) -> None:
        super().__init__(threads)
        from catalens.models import LoadOptions, default_registry

        self.encoder = default_registry().load(model, LoadOptions(device=device))

    def __call__(self, batch: Batch) -> Batch:
        started = time.perf_counter()
        n = len(batch["status"])
        reason = np.asarray(batch["reason"], dtype=object).copy()
        status = np.asarray(batch["status"], dtype=object).copy()
        rows: list[int] = []
        pixels: list[np.ndarray] = []
        for row, image in decoded_images(batch):
            try:
                pixels.append(self.encoder.preprocess(image))
                rows.append(row)
            except Exception as e:  # one bad image must never stop the run
                status[row], reason[row] = FAILED, f"unexpected error while preprocessing: {type(e).__name__}: {e}"
        vectors = np.zeros((n, self.encoder.dim), dtype=np.float32)
        if rows:
            vectors[rows] = self.encoder.encode_pixels(np.stack(pixels))
        extra: dict[str, Any] = {"vector": vectors, "reason": reason}
        return self.finish({**batch, "status": status}, rows, started, extra)
