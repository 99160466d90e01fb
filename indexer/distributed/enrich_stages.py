"""The model actors of the caption and OCR passes on Ray: one captioner or OCR engine held per actor.

They take the read stage's batches (:func:`catalens.indexer.distributed.stages.read_batch`, run with no draft
size and no pixel budget, so the images are decoded exactly as the local pass decodes them) and add three
string columns: ``text`` and ``data`` (the result's JSON-ready detail, as JSON text), and the captioner adds
``spec`` (the spec the loaded model records, which the driver checks against the one it planned with). The
driver builds the stored rows from these with the same helpers a local pass uses, so the rows are identical.

A row that cannot be read keeps its read failure; an image that breaks the OCR engine becomes a failure of
that row with the same reason as locally; a captioner that raises fails the batch, as it does locally.
"""

from __future__ import annotations

import json
import time

import numpy as np

from catalens.indexer.distributed.stages import FAILED, Batch, ModelActor, decoded_images
from catalens.models.captioning import CaptionOptions
from catalens.models.ocr import OcrFailedError, OcrOptions


def _strings(n: int, value: str = "") -> np.ndarray:
    return np.full(n, value, dtype=object)


class CaptionActor(ModelActor):
    """Holds one generative captioner (BLIP, BLIP-2; on the GPU Ray gave it, if any) and captions each batch.

    The attribute captioner is not run here: it captions the stored vectors, which only the driver has.
    """

    def __init__(self, spec: str, options: CaptionOptions, threads: int) -> None:
        super().__init__(threads)
        from catalens.models.captioning import load_captioner, parse_captioner_spec

        self.captioner = load_captioner(parse_captioner_spec(spec), options)
        self.spec = str(getattr(self.captioner, "run_spec", self.captioner.spec))

    def __call__(self, batch: Batch) -> Batch:
        started = time.perf_counter()
        n = len(batch["status"])
        text, data = _strings(n), _strings(n)
        decoded = decoded_images(batch)
        rows = [row for row, _ in decoded]
        if decoded:
            captions = self.captioner.caption([image for _, image in decoded])
            for row, caption in zip(rows, captions, strict=True):
                text[row] = caption.text
                data[row] = json.dumps({"tags": dict(caption.tags), "scores": dict(caption.scores)})
        return self.finish(batch, rows, started, {"text": text, "data": data, "spec": _strings(n, self.spec)})


class OcrActor(ModelActor):
    """Holds one OCR engine and reads the text in each decoded image of a batch, one image at a time."""

    def __init__(self, spec: str, options: OcrOptions) -> None:
        super().__init__(0)  # the engines run on onnxruntime or Tesseract, with their own threads
        from catalens.models.ocr import load_ocr

        self.engine = load_ocr(spec, options)

    def __call__(self, batch: Batch) -> Batch:
        started = time.perf_counter()
        n = len(batch["status"])
        text, data = _strings(n), _strings(n)
        status = np.asarray(batch["status"], dtype=object).copy()
        reason = np.asarray(batch["reason"], dtype=object).copy()
        rows: list[int] = []
        for row, image in decoded_images(batch):
            try:
                result = self.engine.read(image)
            except OcrFailedError as e:  # this image broke the engine; the next one may not
                status[row], reason[row] = FAILED, e.item_reason
                continue
            text[row], data[row] = result.text, json.dumps(result.to_data())
            rows.append(row)
        extra = {"text": text, "data": data, "reason": reason}
        return self.finish({**batch, "status": status}, rows, started, extra)
