"""`catalens serve` as a real process on a free loopback port, for the end-to-end tests that need one."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parents[2]
#: How long a server may take to answer ``/readyz`` (it loads the model and the index first).
READY_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_serve(
    store: Path, *options: str, env: dict[str, str], log: IO[str] | None = None
) -> tuple[str, subprocess.Popen[str]]:
    """Start `catalens serve` on ``store`` and wait until it is ready; returns its base URL and process.

    Its output goes to ``log`` when given (stderr too), else to pipes the caller may read after :func:`stop`.

    Raises:
        AssertionError: the process exited, or was not ready within :data:`READY_TIMEOUT_S`.
    """
    port = free_port()
    command = [sys.executable, "-m", "catalens.search.cli", "serve", "--store", str(store), "--port", str(port)]
    stdout: IO[str] | int = log if log is not None else subprocess.PIPE
    stderr = subprocess.STDOUT if log is not None else subprocess.PIPE
    process = subprocess.Popen([*command, *options], cwd=REPO, env=env, stdout=stdout, stderr=stderr, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = f"see {log.name}" if log else str(process.communicate())
            raise AssertionError(f"catalens serve exited with {process.returncode}: {said}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return base, process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(process)
    raise AssertionError("catalens serve did not become ready")


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it has not exited within 15 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
