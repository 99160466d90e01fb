"""Shared fixtures: no network, a tiny random open_clip model, and generated catalog images."""

from __future__ import annotations

import importlib.util
import json
import socket
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PIL import Image

TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/{name}.py`` (not a package) as module ``name``, registered in ``sys.modules`` so that
    its dataclasses and the script's own imports of it resolve."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection that leaves the machine; loopback stays open for local test servers."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
            raise ConnectionRefusedError(f"network access blocked in tests: {address!r}")
        return real_connect(self, address)

    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK and host is not None:
            raise socket.gaierror(f"name resolution blocked in tests: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model spec: a local architecture JSON for a tiny ViT with random, seeded weights."""
    path = tmp_path_factory.mktemp("models") / "tiny-clip.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return str(path)


@pytest.fixture(scope="session")
def other_tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second tiny architecture with another embedding size, to test model mismatches."""
    config = json.loads(json.dumps(TINY_CONFIG))
    config["embed_dim"] = 24
    path = tmp_path_factory.mktemp("models") / "tiny-clip-24.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tiny_spec: str) -> Any:
    """The tiny model, loaded once per session (it is stateless, so tests can share it)."""
    from catalens.models import load_model

    return load_model(tiny_spec)


def pattern_image(seed: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A deterministic, asymmetric RGB image (distinct per seed, so rotations and flips change it)."""
    width, height = size
    image = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    pixels = image.load()
    assert pixels is not None
    for x in range(width // 3):
        for y in range(height // 2):
            pixels[x, y] = (255 - (seed * 7) % 256, (x * 5) % 256, (y * 9) % 256)
    return image


@pytest.fixture
def make_catalog(tmp_path: Path) -> Callable[..., Path]:
    """Write ``n`` distinct JPEGs into a folder and return it."""

    def make(n: int = 8, folder: str = "catalog", size: tuple[int, int] = (96, 64)) -> Path:
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pattern_image(i, size).save(root / f"item-{i:03d}.jpg", quality=92)
        return root

    return make


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but holds almost no data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def bad_files() -> Callable[[Path], dict[str, str]]:
    """Write every kind of bad file into a folder; returns file name -> the reason fragment expected."""

    def write(folder: Path) -> dict[str, str]:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "zero.jpg").write_bytes(b"")
        (folder / "notes-named.jpg").write_text("this is not a picture\n")
        good = folder / "_full.jpg"
        pattern_image(99, (256, 256)).save(good, quality=95)
        data = good.read_bytes()
        good.unlink()
        (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
        (folder / "bomb.png").write_bytes(png_header_only(30000, 30000))
        return {
            "zero.jpg": "empty file",
            "notes-named.jpg": "contains text",
            "truncated.jpg": "truncated",
            "bomb.png": "decompression bomb",
        }

    return write


@pytest.fixture
def http_server() -> Iterator[Callable[[dict[str, tuple[int, bytes]]], str]]:
    """Serve fixed responses on 127.0.0.1: ``{"/path": (status, body)}``; returns the base URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    servers: list[ThreadingHTTPServer] = []

    def start(routes: dict[str, tuple[int, bytes]]) -> str:
        hits: dict[str, int] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                hits[self.path] = hits.get(self.path, 0) + 1
                route = routes.get(self.path)
                if callable(route):
                    status, body = route(hits[self.path])
                else:
                    status, body = route if route else (404, b"not found")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def unit(vector: Any) -> Any:
    import numpy as np

    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


@pytest.fixture
def vector_store(tmp_path: Path, tiny_model: Any) -> Callable[..., Path]:
    """Build a store whose vectors are given directly (no images), so rankings are known in advance.

    Call with ``{id: (vector, fields)}`` where fields may hold product_id, title, category, price, attributes;
    returns the store directory, indexed with ``factory``.
    """
    from catalens.indexer.pipeline import reindex
    from catalens.indexer.records import ItemRecord
    from catalens.indexer.store import CatalogStore, EmbeddedItem

    def build(items: dict[str, tuple[Any, dict[str, Any]]], factory: str = "Flat", name: str = "vstore") -> Path:
        root = tmp_path / name
        store = CatalogStore.create(root, tiny_model.spec, tiny_model.dim, factory)
        images = tmp_path / f"{name}-images"
        images.mkdir(exist_ok=True)
        embedded = []
        for n, (item_id, (vector, fields)) in enumerate(items.items()):
            image = images / f"{n}.png"
            pattern_image(n).save(image)
            record = ItemRecord(id=item_id, source=str(image), origin="test", **fields)
            embedded.append(EmbeddedItem(record, f"{n:032x}", 96, 64, unit(vector)))
        with store.writer_lock():
            for start in range(0, len(embedded), 500):
                store.write_batch(embedded=embedded[start : start + 500])
        store.close()
        reindex(root, factory)
        return root

    return build


@pytest.fixture
def open_service(tiny_model: Any) -> Iterator[Callable[..., Any]]:
    """``open_service(store, engine=None, base_url=..., **settings)``: the HTTP service in-process, as a TestClient.

    The engine is opened on ``store`` with the tiny model unless the test brings its own (a recording model,
    limits, tags written first); ``settings`` are :class:`~catalens.search.settings.Settings` fields. Every
    client started is stopped, and every engine closed, when the test ends.
    """
    from fastapi.testclient import TestClient

    from catalens.search.api import create_app
    from catalens.search.engine import SearchEngine
    from catalens.search.settings import Settings

    engines: list[SearchEngine] = []
    clients: list[TestClient] = []

    def start(
        store: Path, engine: SearchEngine | None = None, base_url: str = "http://testserver", **settings: Any
    ) -> TestClient:
        engine = engine or SearchEngine.open(store, encoder=tiny_model)
        engines.append(engine)  # closed even if the app fails to start
        client = TestClient(create_app(Settings(store=store, **settings), engine), base_url=base_url)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
    for engine in engines:
        engine.close()
