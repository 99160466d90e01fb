"""The OCR engine registry: engine specs are parsed and engines loaded through here (see the package docstring)."""

from __future__ import annotations

from typing import Final

from catalens.models.backends import Registry
from catalens.models.ocr.rapidocr import RapidOcrEngine
from catalens.models.ocr.tesseract import TesseractEngine
from catalens.models.ocr.types import EngineBase, OcrEngine, OcrOptions
from catalens.models.specs import SpecParts

#: The engine used when none is named: on the synthetic text catalog (``scripts/bench_ocr.py --n 60``)
#: RapidOCR read 100 % of the printed brands and model numbers, Tesseract 52 % and 71 %.
DEFAULT_OCR: Final = "rapidocr"


class OcrBackend:
    """Registry backend for one engine class: its name and aliases (any case) name it; loading builds it."""

    prefixes: tuple[str, ...] = ()

    def __init__(self, engine: type[EngineBase]) -> None:
        self._engine = engine
        self.name = engine.name
        self.kinds: tuple[str, ...] = (engine.name,)

    def parse(self, parts: SpecParts) -> str | None:
        """The engine's name when ``parts`` names it or one of its aliases, case ignored; else ``None``."""
        name = parts.text.lower()
        return self.name if name == self.name or name in self._engine.aliases else None

    def entries(self) -> list[str]:
        return [self.name]

    def load(self, spec: str, options: OcrOptions) -> OcrEngine:
        """Build the engine (its Python package is imported only now).

        Raises:
            OcrUnavailableError: the engine's package, binary or language data is missing.
        """
        return self._engine(options)


class OcrRegistry(Registry[str, OcrBackend]):
    """The OCR engines by name; a spec is an engine's canonical name."""

    empty_reason = "the OCR engine spec is empty"
    unknown_reason = "no such OCR engine"

    def choices(self) -> list[str]:
        """The canonical engine names, the default first."""
        names = [backend.name for backend in self.backends]
        return sorted(names, key=lambda name: name != DEFAULT_OCR)

    def load(self, text: str, options: OcrOptions | None = None) -> OcrEngine:
        """Parse and load an engine.

        Raises:
            UnknownModelError, OcrUnavailableError.
        """
        spec = self.parse(text)
        return self.backend_for(spec, spec).load(spec, options or OcrOptions())


def default_ocr_registry() -> OcrRegistry:
    """The registry with every OCR engine catalens ships."""
    return OcrRegistry([OcrBackend(RapidOcrEngine), OcrBackend(TesseractEngine)])


def list_ocr_engines() -> list[str]:
    """The canonical OCR engine specs, the default first."""
    return default_ocr_registry().choices()


def parse_ocr_spec(text: str) -> str:
    """The canonical spec for an OCR engine name (case and surrounding spaces ignored, a few aliases).

    Args:
        text: e.g. ``"rapidocr"``, ``" Tesseract "``, ``"pytesseract"``.

    Returns:
        ``"rapidocr"`` or ``"tesseract"``.

    Raises:
        UnknownModelError: no engine has that name (a ``ValueError`` listing the valid choices).
    """
    return default_ocr_registry().parse(text)


def load_ocr(spec: str = DEFAULT_OCR, options: OcrOptions | None = None) -> OcrEngine:
    """Load an OCR engine by spec; its Python package is imported only now.

    Args:
        spec: an engine name, see :func:`list_ocr_engines`.
        options: thresholds, languages and limits; defaults to ``OcrOptions()``.

    Returns:
        A ready engine.

    Raises:
        UnknownModelError: the spec names no engine.
        OcrUnavailableError: the engine's package, binary or language data is missing (with how to install).
    """
    return default_ocr_registry().load(spec, options)
