"""OCR engines read brand names and model numbers off generated product shots, and nothing off plain images."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from catalens.models.errors import ModelError, UnknownModelError
from catalens.models.ocr import (
    DEFAULT_OCR,
    OcrEngine,
    OcrFailedError,
    OcrOptions,
    OcrResult,
    OcrUnavailableError,
    OcrWord,
    list_ocr_engines,
    load_ocr,
    parse_ocr_spec,
)

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
SIZE = 480
BOX = tuple[float, float, float, float]


def font(size: int, face: str = "DejaVuSans-Bold.ttf") -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / face
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size=size)


def product_shot(
    lines: list[str],
    *,
    label: bool = True,
    text_size: int = 36,
    background: tuple[int, int, int] = (40, 110, 180),
    product: tuple[int, int, int] = (200, 60, 50),
    ink: tuple[int, int, int] | None = None,
) -> tuple[Image.Image, list[BOX]]:
    """A product (a rounded box) on a coloured background with ``lines`` printed on it, one under another.

    Returns:
        The image and the bounding box (left, top, right, bottom) of each printed line's ink.
    """
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((90, 70, 390, 420), radius=28, fill=product)
    if label:
        draw.rectangle((105, 130, 375, 140 + len(lines) * (text_size + 24)), fill=(255, 255, 255))
    fill = ink or ((20, 20, 30) if label else (255, 255, 255))
    boxes = []
    for i, text in enumerate(lines):
        f = font(text_size if i == 0 else text_size * 2 // 3)
        centre = (SIZE / 2, 160 + i * (text_size + 20))
        draw.text(centre, text, font=f, fill=fill, anchor="mm")
        boxes.append(draw.textbbox(centre, text, font=f, anchor="mm"))
    return image, [tuple(map(float, b)) for b in boxes]  # type: ignore[misc]


def plain_product() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (226, 236, 244))
    draw = ImageDraw.Draw(image)
    draw.ellipse((120, 400, 360, 440), fill=(180, 190, 200))
    draw.rounded_rectangle((170, 120, 310, 420), radius=40, fill=(35, 80, 170))
    draw.rectangle((215, 70, 265, 125), fill=(240, 240, 240))
    return image


def gradient() -> Image.Image:
    ramp = np.linspace(0, 1, SIZE)[None, :, None]
    pixels = np.array([240, 200, 40], float) * (1 - ramp) + np.array([110, 50, 150], float) * ramp
    return Image.fromarray(np.repeat(pixels, SIZE, axis=0).astype(np.uint8), "RGB")


def noise() -> Image.Image:
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), "RGB")
    return coarse.resize((SIZE, SIZE), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(1))


NO_TEXT = {"plain product": plain_product, "gradient": gradient, "noise texture": noise}


def bounds(word: OcrWord) -> BOX:
    xs, ys = [x for x, _ in word.box], [y for _, y in word.box]
    return min(xs), min(ys), max(xs), max(ys)


def assert_box_around(word: OcrWord, ink: BOX, image: Image.Image, slack: float = 12.0) -> None:
    """The word's box lies inside the image and around (near) the printed ink."""
    assert len(word.box) == 4
    left, top, right, bottom = bounds(word)
    assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
    assert left <= ink[0] + slack and right >= ink[2] - slack and top <= ink[1] + slack and bottom >= ink[3] - slack
    assert left >= ink[0] - slack and right <= ink[2] + slack and top >= ink[1] - slack and bottom <= ink[3] + slack


def texts(result: OcrResult) -> list[str]:
    return [w.text for w in result.words]


@pytest.fixture(scope="session")
def rapid() -> OcrEngine:
    return load_ocr("rapidocr", OcrOptions(num_threads=2))


@pytest.fixture(scope="session")
def tesseract() -> OcrEngine:
    if shutil.which("tesseract") is None:
        pytest.skip("the tesseract binary is not installed (apt-get install tesseract-ocr)")
    return load_ocr("tesseract")


@pytest.fixture
def restore_tesseract_cmd() -> Iterator[None]:
    pytesseract = pytest.importorskip("pytesseract")
    command = pytesseract.pytesseract.tesseract_cmd
    yield
    pytesseract.pytesseract.tesseract_cmd = command


# -- RapidOCR --------------------------------------------------------------------------------------------


def test_rapidocr_reads_a_brand_in_a_white_box(rapid: OcrEngine) -> None:
    image, (ink,) = product_shot(["KESTREL"])
    result = rapid.read(image)
    assert texts(result) == ["KESTREL"]
    (word,) = result.words
    assert 0.9 <= word.confidence <= 1.0
    assert_box_around(word, ink, image)


def test_rapidocr_reads_a_model_number_printed_on_the_product(rapid: OcrEngine) -> None:
    image, (ink,) = product_shot(["XR-2040"], label=False, text_size=30)
    (word,) = rapid.read(image).words
    assert word.text == "XR-2040"
    assert_box_around(word, ink, image)


def test_rapidocr_gives_words_in_reading_order(rapid: OcrEngine) -> None:
    image, (brand_ink, model_ink) = product_shot(["KESTREL", "XR-2040"])
    result = rapid.read(image)
    assert texts(result) == ["KESTREL", "XR-2040"]
    assert [w.line for w in result.words] == [0, 1]
    assert result.text == "KESTREL\nXR-2040"
    assert_box_around(result.words[0], brand_ink, image)
    assert_box_around(result.words[1], model_ink, image)


def test_rapidocr_splits_a_line_into_words(rapid: OcrEngine) -> None:
    # PP-OCRv4 often reads "KESTRELPro"; the engine splits at the gap between the inked words.
    image, (ink,) = product_shot(["KESTREL Pro"], text_size=34)
    result = rapid.read(image)
    assert texts(result) == ["KESTREL", "Pro"]
    assert result.text == "KESTREL Pro"
    first, second = (bounds(w) for w in result.words)
    assert first[2] <= second[0] + 2  # side by side, left to right, hardly overlapping
    assert first[0] <= ink[0] + 12 and second[2] >= ink[2] - 12


def test_rapidocr_reads_rotated_coloured_text(rapid: OcrEngine) -> None:
    image, _ = product_shot(["Quendal"], label=False, product=(240, 200, 40), ink=(110, 50, 150))
    rotated = image.rotate(5, resample=Image.Resampling.BICUBIC, fillcolor=(40, 110, 180))
    assert texts(rapid.read(rotated)) == ["Quendal"]


@pytest.mark.parametrize("kind", sorted(NO_TEXT))
def test_rapidocr_reads_nothing_without_text(rapid: OcrEngine, kind: str) -> None:
    assert rapid.read(NO_TEXT[kind]()).words == ()


def test_rapidocr_maps_boxes_back_from_a_downscaled_image() -> None:
    engine = load_ocr("rapidocr", OcrOptions(max_side=320, num_threads=1))
    image, (ink,) = product_shot(["KESTREL"], text_size=44)
    big = image.resize((SIZE * 2, SIZE * 2), Image.Resampling.BICUBIC)
    (word,) = engine.read(big).words
    assert word.text == "KESTREL"
    assert_box_around(word, tuple(2 * v for v in ink), big, slack=24)  # type: ignore[arg-type]


def test_rapidocr_accepts_other_image_modes(rapid: OcrEngine) -> None:
    image, _ = product_shot(["KESTREL"])
    assert texts(rapid.read(image.convert("L"))) == ["KESTREL"]
    assert texts(rapid.read(image.convert("RGBA"))) == ["KESTREL"]


def test_rapidocr_reads_dark_text_on_a_transparent_cut_out(rapid: OcrEngine) -> None:
    # Transparent pixels are read as white (a shop page), not black, or dark print would vanish.
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((SIZE / 2, SIZE / 2), "KESTREL", font=font(40), fill=(20, 20, 30, 255), anchor="mm")
    assert texts(rapid.read(image)) == ["KESTREL"]


def test_rapidocr_failure_on_one_image_is_typed(rapid: OcrEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(rapid, "_ocr", broken)
    with pytest.raises(OcrFailedError, match="onnxruntime exploded") as info:
        rapid.read(plain_product())
    assert info.value.engine == "rapidocr"
    assert isinstance(info.value, ModelError)


# -- Tesseract -------------------------------------------------------------------------------------------


def test_tesseract_reads_dark_text_on_a_white_label(tesseract: OcrEngine) -> None:
    image, (brand_ink, model_ink) = product_shot(["KESTREL", "XR-2040"], text_size=40)
    result = tesseract.read(image)
    by_text = {w.text: w for w in result.words}
    assert "KESTREL" in by_text and "XR-2040" in by_text
    assert result.text.index("KESTREL") < result.text.index("XR-2040")
    for word, ink in ((by_text["KESTREL"], brand_ink), (by_text["XR-2040"], model_ink)):
        assert 0.0 <= word.confidence <= 1.0
        assert_box_around(word, ink, image)


@pytest.mark.parametrize("kind", sorted(NO_TEXT))
def test_tesseract_reads_nothing_without_text(tesseract: OcrEngine, kind: str) -> None:
    assert tesseract.read(NO_TEXT[kind]()).words == ()


def test_tesseract_failure_on_one_image_is_typed(tesseract: OcrEngine, restore_tesseract_cmd: None) -> None:
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = shutil.which("false") or "/bin/false"
    with pytest.raises(OcrFailedError) as info:
        tesseract.read(plain_product())
    assert info.value.engine == "tesseract"


def test_missing_tesseract_binary_says_how_to_install(restore_tesseract_cmd: None, tmp_path: Path) -> None:
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = str(tmp_path / "no-such-tesseract")
    with pytest.raises(OcrUnavailableError, match="apt-get install tesseract-ocr") as info:
        load_ocr("tesseract")
    assert info.value.engine == "tesseract"
    assert isinstance(info.value, ModelError)


def test_missing_tesseract_language_says_how_to_install(tesseract: OcrEngine) -> None:
    with pytest.raises(OcrUnavailableError, match="apt-get install tesseract-ocr-xyz"):
        load_ocr("tesseract", OcrOptions(languages=("eng", "xyz")))


@pytest.mark.parametrize(
    ("spec", "module", "hint"),
    [
        ("rapidocr", "rapidocr_onnxruntime", "pip install rapidocr-onnxruntime"),
        ("tesseract", "pytesseract", "pip install pytesseract"),
    ],
)
def test_missing_python_package_says_how_to_install(
    spec: str, module: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(OcrUnavailableError, match=hint):
        load_ocr(spec)


# -- specs, options, results -----------------------------------------------------------------------------


def test_specs_are_canonical() -> None:
    assert list_ocr_engines()[0] == DEFAULT_OCR == "rapidocr"
    assert set(list_ocr_engines()) == {"rapidocr", "tesseract"}
    assert parse_ocr_spec(" RapidOCR ") == "rapidocr"
    assert parse_ocr_spec("pytesseract") == "tesseract"


@pytest.mark.parametrize("spec", ["easyocr", "", "rapidocr:v5"])
def test_unknown_spec_lists_the_choices(spec: str) -> None:
    with pytest.raises(UnknownModelError) as info:
        load_ocr(spec)
    assert set(info.value.choices) == {"rapidocr", "tesseract"}
    assert "rapidocr" in str(info.value) and "tesseract" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_engines_follow_the_protocol(rapid: OcrEngine) -> None:
    assert isinstance(rapid, OcrEngine)
    assert rapid.spec == "rapidocr"


@pytest.mark.parametrize(
    "kwargs",
    [{"min_confidence": 1.5}, {"min_confidence": -0.1}, {"languages": ()}, {"max_side": 0}, {"num_threads": 0}],
)
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        OcrOptions(**kwargs)  # type: ignore[arg-type]


def test_result_round_trips_through_json_data() -> None:
    words = (
        OcrWord("KESTREL", ((10.0, 20.0), (90.0, 20.0), (90.0, 40.0), (10.0, 40.0)), 0.99, 0),
        OcrWord("Pro", ((95.0, 20.0), (120.0, 20.0), (120.0, 40.0), (95.0, 40.0)), 0.95, 0),
        OcrWord("XR-2040", ((10.0, 50.0), (80.0, 50.0), (80.0, 66.0), (10.0, 66.0)), 0.9, 1),
    )
    result = OcrResult(words)
    assert result.text == "KESTREL Pro\nXR-2040"
    assert OcrResult.from_data(result.to_data()) == result
    assert OcrResult(()).text == ""
