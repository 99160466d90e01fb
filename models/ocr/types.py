"""What both OCR engines share: the words they read, their options, the engine protocol and base, the errors."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Protocol, runtime_checkable

from PIL import Image

from catalens.models.errors import BackendUnavailableError, ModelError

Point = tuple[float, float]


@dataclass(frozen=True)
class OcrWord:
    """One word read in an image.

    Attributes:
        text: the word as read (no spaces).
        box: four (x, y) corners in image pixels, clockwise from the top left of the text.
        confidence: the engine's confidence, 0..1.
        line: the index of the word's text line in reading order (0 for the first line).
    """

    text: str
    box: tuple[Point, ...]
    confidence: float
    line: int = 0


@dataclass(frozen=True)
class OcrResult:
    """The words read in one image, in reading order."""

    words: tuple[OcrWord, ...]

    @property
    def text(self) -> str:
        """The words in reading order: words of a line joined by spaces, lines by newlines."""
        lines: dict[int, list[str]] = {}
        for word in self.words:
            lines.setdefault(word.line, []).append(word.text)
        return "\n".join(" ".join(words) for _, words in sorted(lines.items()))

    def to_data(self) -> dict[str, Any]:
        """A JSON-ready form: ``{"words": [{"text", "box": [[x, y], ...], "confidence", "line"}, ...]}``."""
        return {
            "words": [
                {
                    "text": w.text,
                    "box": [[round(x, 1), round(y, 1)] for x, y in w.box],
                    "confidence": round(w.confidence, 4),
                    "line": w.line,
                }
                for w in self.words
            ]
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> OcrResult:
        """The inverse of :meth:`to_data`.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not in the form ``to_data`` writes.
        """
        return cls(
            tuple(
                OcrWord(
                    text=str(w["text"]),
                    box=tuple((float(x), float(y)) for x, y in w["box"]),
                    confidence=float(w["confidence"]),
                    line=int(w.get("line", 0)),
                )
                for w in data["words"]
            )
        )


@dataclass(frozen=True)
class OcrOptions:
    """How an engine reads.

    Attributes:
        min_confidence: words below this confidence (0..1) are dropped. On the synthetic text catalog
            RapidOCR's right words scored 0.85 or more and its stray words in text-free images 0.61 or
            less; for Tesseract 0.7 dropped three quarters of the false words that 0.6 let through for one
            brand in sixty (``scripts/bench_ocr.py``). Bare punctuation is always dropped, and a word of
            one character is kept only at 0.9 or more.
        languages: Tesseract language codes (``eng``, ``deu``, ...); RapidOCR uses its shipped models,
            which read Latin and Chinese script, and ignores this.
        max_side: images whose longer side exceeds this many pixels are scaled down before reading (boxes
            still refer to the original pixels); packaging text stays legible at this size and detection
            time grows with the pixel count.
        num_threads: CPU threads one engine uses for one image (onnxruntime intra-op threads for RapidOCR;
            Tesseract's OpenMP threads follow ``OMP_THREAD_LIMIT`` in the environment instead).
    """

    min_confidence: float = 0.7
    languages: tuple[str, ...] = ("eng",)
    max_side: int = 1280
    num_threads: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must lie in 0..1, got {self.min_confidence}")
        if not self.languages or any(not code or "+" in code for code in self.languages):
            raise ValueError(f"languages must be non-empty language codes, got {self.languages!r}")
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32 pixels, got {self.max_side}")
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {self.num_threads}")


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the words in an image."""

    @property
    def spec(self) -> str:
        """The canonical spec of this engine (``rapidocr``, ``tesseract``)."""
        ...

    def read(self, image: Image.Image) -> OcrResult:
        """The words in ``image`` at or above the engine's ``min_confidence``, in reading order.

        Raises:
            OcrFailedError: the engine failed on this image (record it for the item and go on).
        """
        ...


class OcrUnavailableError(BackendUnavailableError):
    """An OCR engine cannot run here: its Python package, binary or language data is missing."""

    noun = "OCR engine"

    @property
    def engine(self) -> str:
        """The engine spec."""
        return self.name


class OcrFailedError(ModelError):
    """An OCR engine failed on one image; the caller records it for that item and goes on.

    Attributes:
        engine: the engine spec.
        reason: what went wrong.
    """

    def __init__(self, engine: str, reason: str) -> None:
        self.engine = engine
        self.reason = reason
        super().__init__(f"OCR engine {engine!r} failed on an image: {reason}")

    @property
    def item_reason(self) -> str:
        """The failure recorded against the item (by a local pass and on Ray alike)."""
        return f"OCR failed: {self.reason}"


class EngineBase:
    """The base of both engines: their spec (name), aliases and options, and importing their package with a hint.

    Class attributes:
        name: the canonical spec.
        aliases: other names the spec may be given as (matched case-insensitively).
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: OcrOptions) -> None:
        self._options = options

    @property
    def spec(self) -> str:
        return self.name

    @property
    def options(self) -> OcrOptions:
        return self._options

    @classmethod
    def import_package(cls, module: str, hint: str) -> ModuleType:
        """Import the engine's Python package.

        Raises:
            OcrUnavailableError: it cannot be imported; ``hint`` says how to install it.
        """
        try:
            return importlib.import_module(module)
        except ImportError as e:
            raise OcrUnavailableError(cls.name, f"the Python package cannot be imported ({e})", hint) from e

    def read(self, image: Image.Image) -> OcrResult:
        """The words in ``image``; see :class:`OcrEngine`."""
        raise NotImplementedError
