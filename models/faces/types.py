"""What face detectors share: the boxes they find, their options, the detector protocol and the errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from catalens.models.errors import BackendUnavailableError


@dataclass(frozen=True)
class FaceBox:
    """One face found in an image.

    Attributes:
        x0, y0, x1, y1: the box in pixels of the image passed to ``detect``.
        score: the detector's confidence, 0..1.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``."""
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class FaceOptions:
    """How a detector runs.

    Attributes:
        threshold: the lowest score kept. CenterFace's authors use 0.5; blurring prefers recall, and at 0.4 the
            repo's product images still gave no false positives (``scripts/bench_face_blur.py``).
        max_side: images are scaled down so their longest side is at most this many pixels before detection
            (time grows with the pixel count; faces smaller than about 1/50 of this are then missed).
        num_threads: threads the detector may use within one image.
    """

    threshold: float = 0.4
    max_side: int = 1024
    num_threads: int = 2


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in an RGB image; safe to share between threads."""

    name: str

    def detect(self, image: Image.Image) -> list[FaceBox]:
        """The faces in ``image``, best first."""
        ...


class FaceDetectorUnavailableError(BackendUnavailableError):
    """A face detector cannot run here: its package or model file is missing."""

    noun = "face detector"

    @property
    def detector(self) -> str:
        """The detector spec."""
        return self.name
