"""Tesseract through ``pytesseract`` (``apt-get install tesseract-ocr``), with word boxes from ``image_to_data``."""

from __future__ import annotations

import shutil
from typing import Final

from PIL import Image

from catalens.models.ocr.reading import Line, clip_box, in_reading_order, prepare
from catalens.models.ocr.types import EngineBase, OcrFailedError, OcrOptions, OcrResult, OcrUnavailableError, Point

# A hung tesseract process must not stall an indexing run.
_TESSERACT_TIMEOUT_S: Final = 60.0
# Product shots are small: Tesseract reads best with letters some 20-30 px high, so small images are
# scaled up to about this many pixels on the longer side before reading (never past max_side).
_TESSERACT_UPSCALE_TO: Final = 1000
# Page segmentation 6 ("one uniform block of text") with Sauvola local thresholding (method 2, Tesseract 5):
# on product shots the default global Otsu threshold turns a white label on a coloured product into an
# inverted island and reads nothing in it. Of the modes 3, 6 and 11 with each thresholding method, this
# read the most brands and model numbers of the synthetic text catalog (scripts/bench_ocr.py).
_TESSERACT_CONFIG: Final = "--psm 6 -c thresholding_method=2"


class TesseractEngine(EngineBase):
    """Tesseract through ``pytesseract`` (word boxes from ``image_to_data``); see the package doc."""

    name = "tesseract"
    aliases = ("tess", "pytesseract")

    def __init__(self, options: OcrOptions) -> None:
        """Check that pytesseract, the ``tesseract`` binary and the language data are installed.

        Raises:
            OcrUnavailableError: pytesseract, the binary or a language's data is missing.
        """
        pytesseract = self.import_package("pytesseract", "pip install pytesseract")
        super().__init__(options)
        self._pt = pytesseract
        command = str(pytesseract.pytesseract.tesseract_cmd)
        install = (
            "apt-get install tesseract-ocr (Debian/Ubuntu), brew install tesseract (macOS), or set "
            "pytesseract.pytesseract.tesseract_cmd to the binary"
        )
        # pytesseract caches its version and language probes for the process, so the binary is looked up
        # here on every load.
        if shutil.which(command) is None:
            raise OcrUnavailableError("tesseract", f"the tesseract binary {command!r} was not found", install)
        try:
            self._version = str(pytesseract.get_tesseract_version())
            installed = set(pytesseract.get_languages(config=""))
        except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError, OSError) as e:
            raise OcrUnavailableError(
                "tesseract", f"the tesseract binary {command!r} does not run ({e})", install
            ) from e
        missing = [code for code in options.languages if code not in installed]
        if missing:
            packages = " ".join(f"tesseract-ocr-{code.replace('_', '-').lower()}" for code in missing)
            raise OcrUnavailableError(
                "tesseract",
                f"no language data for {', '.join(missing)} (installed: {', '.join(sorted(installed)) or 'none'})",
                f"apt-get install {packages}",
            )
        self._lang = "+".join(options.languages)

    @property
    def version(self) -> str:
        return self._version

    def read(self, image: Image.Image) -> OcrResult:
        """The words in ``image``; see :class:`OcrEngine`.

        Raises:
            OcrFailedError: tesseract failed, timed out or vanished while reading this image.
        """
        prepared, scale = prepare(image, self._options.max_side)
        longest = max(prepared.size)
        target = min(_TESSERACT_UPSCALE_TO, self._options.max_side)
        if longest < target:
            factor = target / longest
            size = (round(prepared.width * factor), round(prepared.height * factor))
            prepared = prepared.resize(size, Image.Resampling.LANCZOS)
            scale /= factor
        pt = self._pt
        try:
            data = pt.image_to_data(
                prepared.convert("L"),
                lang=self._lang,
                config=_TESSERACT_CONFIG,
                output_type=pt.Output.DICT,
                timeout=_TESSERACT_TIMEOUT_S,
            )
        except (pt.TesseractError, pt.TesseractNotFoundError, RuntimeError, OSError) as e:
            raise OcrFailedError("tesseract", f"{type(e).__name__}: {e}") from e
        lines: dict[tuple[int, int, int], list[tuple[str, tuple[Point, ...], float]]] = {}
        for i, text in enumerate(data["text"]):
            conf = float(data["conf"][i])
            word = str(text).strip()
            if conf < 0 or not word:
                continue
            x, y, w, h = (float(data[k][i]) for k in ("left", "top", "width", "height"))
            box = clip_box([(x, y), (x + w, y), (x + w, y + h), (x, y + h)], scale, *image.size)
            key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
            lines.setdefault(key, []).append((word, box, min(max(conf / 100.0, 0.0), 1.0)))
        ordered = [Line(sorted(ws, key=lambda w: w[1][0][0])) for ws in lines.values()]
        return in_reading_order(ordered, self._options.min_confidence)
