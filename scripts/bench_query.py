#!/usr/bin/env python3
"""Query benchmark: how fast is a text query, from the model to the HTTP answer?

Builds a store of N synthetic, L2-normalised vectors (no images; the catalog metadata is made up) with the
model's dimension (``--model ViT-B-32:random`` for a real-size text tower with random weights; by default a tiny
random open_clip architecture), publishes its FAISS index, then measures in one run, interleaved:

* ``engine_search_ms``: ``SearchEngine.search_vector`` alone (FAISS search plus reading the hits' rows from
  SQLite), k=10, over random unit query vectors, in this process;
* ``encode_ms``: ``encoder.encode_texts([q])`` alone for single queries (the same phrases as the HTTP test);
* ``padded_encode_text_ms``: open_clip's own ``encode_text`` on the query padded to the context length, in
  torch: the baseline a plain open_clip user pays;
* ``search_text_vector_ms``: ``SearchEngine.search_text`` in vector mode (encode + search + join);
* ``search_text_ms``: ``SearchEngine.search_text`` in the default (hybrid) mode, what the route calls;
* ``onnx_threads_encode_ms``: one query through ONNX Runtime sessions of 1 and 2 intra-op threads (when the
  text tower runs on ONNX Runtime, see ``models/onnx_text.py``);
* ``http``: ``GET /v1/search?q=...&k=10`` against a ``catalens serve`` subprocess on 127.0.0.1, interleaved,
  then 1 and 8 keep-alive clients for ``--duration`` s each: latency percentiles, requests/s, errors.

Ratios (medians over the same stretch of time, so drifting machine load affects both sides alike):

* ``vector_mode_vs_padded_encode`` = vector-mode ``search_text`` p50 / padded ``encode_text`` p50 (target 0.35);
* ``http_overhead_ratio`` = HTTP p50 / default-mode ``search_text`` p50 (target 1.3): routing, validation,
  serialisation and the network stack should add at most 30 % to the engine's own work;
* ``service_overhead_ratio`` = HTTP p50 / (encode p50 + engine search p50), the older, looser comparison.

Also: the model load, the ONNX export (``--cold-cache``: into a fresh temporary cache, shared with the server)
and the first vector-mode query after the load. The HTTP clients share the machine with the server (read the
8-client latencies as an upper bound). Wall-clock milliseconds. A human summary on stderr, a JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import scale_data  # noqa: E402

from catalens.indexer.pipeline import reindex  # noqa: E402
from catalens.indexer.records import ItemRecord  # noqa: E402
from catalens.indexer.store import CatalogStore, EmbeddedItem  # noqa: E402
from catalens.models import LoadOptions, load_model  # noqa: E402
from catalens.search.engine import SearchEngine, SearchOptions  # noqa: E402

TINY_MODEL = {
    "embed_dim": 256,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 4},
}
CATEGORIES = (
    "shoes", "boots", "sandals", "bags", "wallets", "belts", "hats", "scarves", "gloves", "jackets",
    "coats", "shirts", "t-shirts", "dresses", "skirts", "trousers", "jeans", "watches", "sunglasses", "jewellery",
)  # fmt: skip
ADJECTIVES = ("red", "blue", "black", "white", "green", "leather", "wool", "cotton", "vintage", "striped")
QUERIES = (
    "red running shoe", "leather handbag", "black ankle boots", "summer sandals", "brown leather wallet",
    "canvas tote bag", "wide brimmed sun hat", "silk scarf", "winter gloves", "denim jacket",
    "waterproof rain coat", "white linen shirt", "graphic t-shirt", "floral summer dress", "pleated midi skirt",
    "slim fit chinos", "ripped blue jeans", "gold wrist watch", "aviator sunglasses", "silver necklace",
    "pearl earrings", "wool beanie", "leather belt with buckle", "hiking boots", "white sneakers",
    "evening clutch", "backpack for laptop", "cashmere sweater", "hooded sweatshirt", "puffer jacket",
    "trench coat", "polka dot blouse", "yoga leggings", "swim shorts", "bikini top", "baseball cap",
    "knitted cardigan", "chelsea boots", "espadrilles", "crossbody bag", "card holder", "wool overcoat",
    "striped sailor shirt", "little black dress", "cargo trousers", "bomber jacket", "sports watch",
    "round sunglasses", "charm bracelet", "velvet loafers",
)  # fmt: skip
WARMUP_REQUESTS = 20
READY_TIMEOUT_S = 120.0


def synthetic_vectors(dim: int, count: int, seed: int, chunk: int) -> Iterator[np.ndarray]:
    """Unit vectors in chunks: 512-d ones from issue 13's generator (``scripts/scale_data.py``: the low
    intrinsic dimension real embeddings have, so an approximate index behaves as it would on them), other
    sizes isotropic Gaussian (only the tiny default model's 256-d store, indexed exactly)."""
    if dim == scale_data.DIM:
        for _, _, vectors in scale_data.Generator.make(seed).stream(count, chunk=chunk):
            yield vectors
        return
    rng = np.random.default_rng(seed)
    for start in range(0, count, chunk):
        vectors = rng.standard_normal((min(chunk, count - start), dim), dtype=np.float32)
        yield vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build_store(store_dir: Path, spec: str, dim: int, count: int, seed: int, chunk: int = 5000) -> None:
    """Write ``count`` synthetic unit vectors with made-up metadata, ``chunk`` rows per transaction."""
    rng = np.random.default_rng(seed)
    store = CatalogStore.create(store_dir, spec, dim)  # the default index, `auto`, as users get it
    try:
        with store.writer_lock():
            start = 0
            for vectors in synthetic_vectors(dim, count, seed, chunk):
                n = len(vectors)
                prices = np.round(rng.uniform(5, 500, size=n), 2)
                cats = rng.integers(0, len(CATEGORIES), size=n)
                adjs = rng.integers(0, len(ADJECTIVES), size=n)
                items = []
                for j in range(n):
                    i = start + j
                    category = CATEGORIES[cats[j]]
                    record = ItemRecord(
                        id=f"sku-{i}",
                        source=f"/synthetic/{i}.jpg",
                        origin="bench",
                        title=f"{ADJECTIVES[adjs[j]]} {category} #{i}",
                        category=category,
                        price=float(prices[j]),
                        product_id=f"prod-{i // 3}",
                    )
                    items.append(
                        EmbeddedItem(record, content_hash=f"{i:032x}", width=640, height=480, vector=vectors[j])
                    )
                store.write_batch(embedded=items)
                start += n
    finally:
        store.close()
    reindex(store_dir)


def percentiles(values_s: list[float], points: tuple[int, ...] = (50, 99)) -> dict[str, float]:
    """Percentiles of durations given in seconds, in milliseconds."""
    if not values_s:
        return {f"p{p}": float("nan") for p in points}
    ms = np.asarray(values_s) * 1000.0
    return {f"p{p}": round(float(np.percentile(ms, p)), 3) for p in points}


def time_calls(fn: Callable[[Any], object], args_list: Sequence[Any]) -> list[float]:
    """Wall-clock seconds of ``fn(arg)`` for each argument, one after another."""
    durations = []
    for arg in args_list:
        started = time.perf_counter()
        fn(arg)
        durations.append(time.perf_counter() - started)
    return durations


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store_dir: Path, port: int, device: str, log_path: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "catalens.search.cli", "serve", "--store", str(store_dir), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--device", device]
    log = log_path.open("wb")
    try:
        # The queries cycle through a few phrases: with the engine's text cache on, every HTTP query after the
        # first round would skip its text encoding, and the overhead ratio would compare unlike paths.
        env = {**os.environ, "CATALENS_TEXT_CACHE_SIZE": "0"}
        return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    finally:
        log.close()  # the child has its own copy of the descriptor


def wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> float:
    """Poll ``/readyz`` until it answers 200; returns the seconds waited."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        while time.perf_counter() - started < READY_TIMEOUT_S:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                if client.get("/readyz").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(
        f"the server was not ready after {READY_TIMEOUT_S:.0f} s:\n{log_path.read_text(errors='replace')}"
    )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def search_url(query: str) -> str:
    return f"/v1/search?q={quote(query)}&k=10"


def run_phase(base_url: str, clients: int, duration: float) -> dict[str, float | int]:
    """``clients`` threads issue requests back to back for ``duration`` seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    first_error: list[str] = []
    barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def worker(n: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            barrier.wait()
            i = n * 7  # different threads start at different phrases
            while time.perf_counter() < deadline[0]:
                url = search_url(QUERIES[i % len(QUERIES)])
                i += 1
                started = time.perf_counter()
                try:
                    response = client.get(url)
                    ok = response.status_code == 200
                    problem = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as e:
                    ok, problem = False, f"{type(e).__name__}: {e}"
                elapsed = time.perf_counter() - started
                if ok:
                    latencies[n].append(elapsed)
                else:
                    errors[n] += 1
                    if not first_error:
                        first_error.append(problem)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + duration
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    merged = [v for per_thread in latencies for v in per_thread]
    result: dict[str, float | int] = dict(percentiles(merged, (50, 95, 99)))
    result["qps"] = round(len(merged) / wall, 2)
    result["errors"] = sum(errors)
    result["requests"] = len(merged) + sum(errors)
    if first_error:
        print(f"  first error with {clients} clients: {first_error[0]}", file=sys.stderr)
    return result


def padded_encoder(encoder: Any) -> Callable[[str], object] | None:
    """open_clip's own padded ``encode_text`` for one text (the baseline), or ``None`` for other models."""
    module = getattr(encoder, "torch_module", None)
    if module is None or not hasattr(module, "encode_text") or not hasattr(encoder, "tokenize"):
        return None

    def encode(text: str) -> object:
        import torch

        with torch.inference_mode():
            return module.encode_text(encoder.tokenize([text]))

    return encode


def onnx_thread_runners(encoder: Any) -> dict[str, Callable[[str], object]]:
    """One query through ONNX Runtime sessions of 1 and 2 intra-op threads on the encoder's graph (if it has one)."""
    onnx = getattr(encoder, "text_onnx", None)
    if onnx is None:
        return {}
    from catalens.models.onnx_text import OnnxTextEncoder
    from catalens.models.openclip_text import trimmed_tokens

    runners = {}
    for threads in (1, 2):
        session = OnnxTextEncoder(onnx.path, threads)

        def run(text: str, session: OnnxTextEncoder = session) -> object:
            return session(trimmed_tokens(encoder.torch_module, encoder.tokenize([text])).numpy())

        runners[str(threads)] = run
    return runners


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--vectors", type=int, default=100_000, help="items in the synthetic store")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per HTTP concurrency level")
    parser.add_argument("--model", help="model spec, e.g. ViT-B-32:random (default: a tiny random architecture)")
    parser.add_argument("--device", default="auto", help="device for the model, here and in the server")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic vectors, metadata and queries")
    parser.add_argument("--search-queries", type=int, default=300, help="queries per kind in the interleaved rounds")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (in-process parts, then HTTP)")
    parser.add_argument("--keep", type=Path, help="build the store in this directory and keep it")
    parser.add_argument(
        "--cold-cache", action="store_true", help="export the ONNX text tower afresh (a temporary XDG_CACHE_HOME)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="catalens-qbench-") as tmp:
        if args.cold_cache:  # the server inherits it, so it finds the file this process exports
            os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "xdg-cache")
        if args.keep is not None:
            store_dir = args.keep.expanduser().resolve()
            if (store_dir / "manifest.json").exists():
                parser.error(f"{store_dir} already holds a store")
            store_dir.mkdir(parents=True, exist_ok=True)
            model_dir = store_dir  # the spec names this file, so it must outlive the run with the store
        else:
            store_dir = Path(tmp) / "store"
            model_dir = Path(tmp)
        spec = args.model
        if spec is None:
            model_path = model_dir / "bench-tiny-clip.json"
            model_path.write_text(json.dumps(TINY_MODEL))
            spec = str(model_path)

        started = time.perf_counter()
        encoder = load_model(spec, LoadOptions(device=args.device))  # the server loads it the same way
        load_s = time.perf_counter() - started
        onnx = getattr(encoder, "text_onnx", None)
        report = getattr(onnx, "report", None)
        text_runtime = getattr(encoder, "text_runtime", "torch")
        print(
            f"model {encoder.spec} (dim {encoder.dim}) loaded in {load_s:.1f} s; text on {text_runtime}",
            file=sys.stderr,
        )
        if report is not None:
            how = f"exported in {report.export_s:.1f} s" if report.exported else "from the cache"
            print(f"  ONNX text tower {how}, session + probe {report.session_s:.2f} s: {report.path}", file=sys.stderr)

        started = time.perf_counter()
        build_store(store_dir, encoder.spec, encoder.dim, args.vectors, args.seed)
        build_s = time.perf_counter() - started
        print(f"store of {args.vectors} vectors built and indexed in {build_s:.1f} s", file=sys.stderr)

        # The in-process parts and single-client HTTP requests are measured in interleaved rounds, so that the
        # machine's load drifting over the run (30 % from minute to minute on shared hosts) affects all of
        # them alike; the ratios compare medians over the same stretch of time.
        engine = SearchEngine.open(store_dir, encoder=encoder, text_cache_size=0)  # as the server: uncached
        vector_mode = SearchOptions(k=10, mode="vector")
        started = time.perf_counter()
        engine.search_text(QUERIES[0], vector_mode)
        first_query_ms = (time.perf_counter() - started) * 1000.0
        print(f"first vector-mode query after the load: {first_query_ms:.1f} ms", file=sys.stderr)
        padded = padded_encoder(encoder)
        threads = onnx_thread_runners(encoder)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "server.log"
        proc = start_server(store_dir, port, args.device, log_path)
        http: dict[str, dict[str, float | int]] = {}
        timings: dict[str, list[float]] = {
            name: [] for name in ("search", "encode", "padded", "vector", "hybrid", "http", *[f"t{k}" for k in threads])
        }
        try:
            rng = np.random.default_rng(args.seed + 1)
            queries = list(rng.standard_normal((args.search_queries, encoder.dim), dtype=np.float32))
            queries = [q / np.linalg.norm(q) for q in queries]
            options = SearchOptions(k=10)  # the default mode (hybrid), as the HTTP route runs it
            ready_s = wait_ready(proc, base_url, log_path)
            print(f"server ready on port {port} after {ready_s:.1f} s", file=sys.stderr)
            with httpx.Client(base_url=base_url, timeout=30.0) as client:

                def http_get(text: str) -> None:
                    response = client.get(search_url(text))
                    if response.status_code != 200:
                        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

                texts = [QUERIES[i % len(QUERIES)] for i in range(WARMUP_REQUESTS)]
                time_calls(http_get, texts)  # warm-up, both sides
                time_calls(lambda t: engine.search_text(t, options), texts)
                time_calls(lambda t: engine.search_text(t, vector_mode), texts)
                if padded is not None:
                    time_calls(padded, texts[:3])
                per_round = max(1, args.search_queries // args.rounds)
                for r in range(args.rounds):
                    texts = [QUERIES[(r * per_round + i) % len(QUERIES)] for i in range(per_round)]
                    vectors = queries[(r * per_round) % len(queries) :][:per_round] or queries[:per_round]
                    timings["search"] += time_calls(lambda q: engine.search_vector(q, options), vectors)
                    timings["encode"] += time_calls(lambda t: engine.encoder.encode_texts([t]), texts)
                    if padded is not None:
                        timings["padded"] += time_calls(padded, texts)
                    timings["vector"] += time_calls(lambda t: engine.search_text(t, vector_mode), texts)
                    timings["hybrid"] += time_calls(lambda t: engine.search_text(t, options), texts)
                    timings["http"] += time_calls(http_get, texts)
                    for k, run in threads.items():
                        timings[f"t{k}"] += time_calls(run, texts)
            ms = {name: percentiles(values, (50, 95, 99)) for name, values in timings.items()}
            print(
                f"interleaved p50: engine search {ms['search']['p50']:.2f} ms; encode {ms['encode']['p50']:.2f} ms; "
                f"padded encode_text {ms['padded']['p50']:.2f} ms; search_text vector {ms['vector']['p50']:.2f} ms, "
                f"hybrid {ms['hybrid']['p50']:.2f} ms; HTTP (1 client) {ms['http']['p50']:.2f} ms",
                file=sys.stderr,
            )
            for clients in (1, 8):
                http[str(clients)] = phase = run_phase(base_url, clients, args.duration)
                print(
                    f"HTTP {clients} client(s) for {args.duration:g} s: p50 {phase['p50']:.2f} ms "
                    f"p95 {phase['p95']:.2f} ms p99 {phase['p99']:.2f} ms, {phase['qps']:.1f} req/s, "
                    f"{phase['errors']} errors / {phase['requests']} requests",
                    file=sys.stderr,
                )
        finally:
            stop_server(proc)
            engine.close()
        server_rc = proc.returncode
        if server_rc not in (0, -signal.SIGTERM):
            print(f"server exited with {server_rc}:\n{log_path.read_text(errors='replace')}", file=sys.stderr)

    search_ms, encode_ms, http_ms = ms["search"], ms["encode"], ms["http"]
    ratio = http_ms["p50"] / (encode_ms["p50"] + search_ms["p50"])
    sustained_ratio = http["1"]["p50"] / (encode_ms["p50"] + search_ms["p50"])
    vs_padded = ms["vector"]["p50"] / ms["padded"]["p50"] if padded is not None else float("nan")
    http_overhead = http_ms["p50"] / ms["hybrid"]["p50"]
    result = {
        "n_vectors": args.vectors,
        "dim": encoder.dim,
        "model": encoder.spec if args.model else "tiny random open_clip (architecture JSON)",
        "model_spec": encoder.spec,
        "device": getattr(encoder, "device", args.device),
        "cpu_count": os.cpu_count(),
        "text_runtime": text_runtime,
        "onnx_exported_now": report.exported if report is not None else None,
        "onnx_export_s": round(report.export_s, 2) if report is not None else None,
        "onnx_session_s": round(report.session_s, 2) if report is not None else None,
        "model_load_s": round(load_s, 2),
        "first_query_ms": round(first_query_ms, 2),
        "store_build_s": round(build_s, 2),
        "server_ready_s": round(ready_s, 2),
        "server_exit_code": server_rc,
        "engine_search_ms": search_ms,
        "encode_ms": encode_ms,
        "padded_encode_text_ms": ms["padded"],
        "search_text_vector_ms": ms["vector"],
        "search_text_ms": ms["hybrid"],
        "onnx_threads_encode_ms": {k: ms[f"t{k}"] for k in threads},
        "http_interleaved_1_client_ms": http_ms,
        "http": http,
        "vector_mode_vs_padded_encode": round(vs_padded, 3),
        "target_vector_mode_vs_padded_encode": 0.35,
        "http_overhead_ratio": round(http_overhead, 3),
        "service_overhead_ratio": round(ratio, 3),
        "service_overhead_ratio_sustained_1_client": round(sustained_ratio, 3),
        "target_ratio": 1.3,
        "zero_errors_8_clients": http["8"]["errors"] == 0,
    }
    print(
        f"vector-mode search_text / padded encode_text: {vs_padded:.3f} (target <= 0.35); "
        f"HTTP / engine search_text (hybrid): {http_overhead:.2f} (target <= 1.3); "
        f"service overhead ratio {ratio:.2f}",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
