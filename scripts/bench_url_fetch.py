"""Reproduces the issue's two slow-URL findings against a real `catalens serve` and `catalens index` on loopback.

Prints one JSON line: status counts of 45 concurrent image_url posts to a server trickling one byte every 2 s,
the slowest /healthz, /readyz and /v1/search answer while they were in flight, and how long the CLI indexer
took on a manifest with one trickling URL (default 30 s deadline, --fetch-deadline 5 here).
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from PIL import Image

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
CLI = [str(Path(sys.executable).parent / "catalens")]


class Trickle(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        try:
            for _ in range(120):
                self.wfile.write(b"\x89")
                self.wfile.flush()
                time.sleep(2)
        except OSError:
            pass

    def log_message(self, *a):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    work = Path(tempfile.mkdtemp())
    spec = work / "tiny.json"
    spec.write_text(json.dumps(TINY))
    (work / "cat").mkdir()
    for i in range(6):
        Image.new("RGB", (64, 48), (i * 40, 90, 200 - i * 30)).save(work / "cat" / f"{i}.jpg")
    trickle = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    trickle.daemon_threads = True
    threading.Thread(target=trickle.serve_forever, daemon=True).start()
    slow_url = f"http://127.0.0.1:{trickle.server_address[1]}/slow.png"
    store = work / "store"
    subprocess.run(
        [*CLI, "index", str(work / "cat"), "--store", str(store), "--model", str(spec), "--quiet"], check=True
    )

    port = free_port()
    env = {**os.environ, "CATALENS_ALLOW_URL_ITEMS": "true", "CATALENS_FETCH_ALLOW": "127.0.0.1"}
    server = subprocess.Popen(
        [*CLI, "serve", "--store", str(store), "--port", str(port), "--device", "cpu"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    statuses: collections.Counter[int] = collections.Counter()
    longest: dict[int, float] = {}

    def post(i):
        try:
            t0 = time.monotonic()
            r = httpx.post(f"{base}/v1/items", data={"id": f"slow-{i}", "image_url": slow_url}, timeout=120)
            statuses[r.status_code] += 1
            longest[r.status_code] = round(max(longest.get(r.status_code, 0), time.monotonic() - t0), 1)
            if r.status_code == 422:
                longest["detail"] = r.json()["detail"]
        except httpx.HTTPError as e:
            statuses[type(e).__name__] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=post, args=(i,)) for i in range(45)]
    for t in threads:
        t.start()
    time.sleep(2)
    slowest = {}
    for path in ("/healthz", "/readyz", "/v1/search?q=blue"):
        worst = 0.0
        for _ in range(5):
            t0 = time.monotonic()
            code = httpx.get(base + path, timeout=30).status_code
            worst = max(worst, time.monotonic() - t0)
            assert code == 200, (path, code)
        slowest[path] = round(worst, 3)
    for t in threads:
        t.join()
    posts_s = time.monotonic() - started
    server.terminate()
    server.wait()

    manifest = work / "m.csv"
    manifest.write_text(f"id,image\nlocal,{work / 'cat' / '0.jpg'}\nslow,{slow_url}\n")
    t0 = time.monotonic()
    out = subprocess.run(
        [
            *CLI,
            "index",
            str(manifest),
            "--store",
            str(work / "store2"),
            "--model",
            str(spec),
            "--quiet",
            "--json",
            "--fetch-allow",
            "127.0.0.1",
            "--fetch-deadline",
            "5",
        ],
        capture_output=True,
        text=True,
    )
    index_s = time.monotonic() - t0
    report = json.loads(out.stdout)
    print(
        json.dumps(
            {
                "posts": dict(statuses),
                "posts_all_done_s": round(posts_s, 1),
                "longest_post_s": longest,
                "slowest_answer_s": slowest,
                "index_exit": out.returncode,
                "index_s": round(index_s, 1),
                "indexed": report["indexed_total"],
                "failures": report["failures"],
            }
        )
    )


main()
