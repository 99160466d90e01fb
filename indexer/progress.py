"""How long-running library jobs (indexing, captioning, OCR) report progress without printing.

The library never prints: a job receives a :class:`ProgressSink` and the CLI renders it (tqdm bars with
items/s and ETA); library callers pass ``None`` and get :class:`NoProgress`.
"""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    """Receives progress; the CLI renders it with tqdm, library callers may pass ``None``."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...

    def note(self, message: str) -> None:
        """One line for the person running the job (e.g. which model ``auto`` chose and why)."""


class NoProgress:
    """The sink used when the caller passes none: every event is dropped."""

    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass

    def note(self, message: str) -> None:
        pass
