"""Progress rendering for the CLI: the indexer's progress events drawn as tqdm bars on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm


class TqdmProgress:
    """A :class:`indexer.pipeline.ProgressSink` that draws one bar per phase (items/s and ETA)."""

    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled
        self._bar: tqdm | None = None

    def start(self, phase: str, total: int | None) -> None:
        self.finish()
        if self._enabled:
            self._bar = tqdm(
                total=total, desc=phase, unit=" items", file=sys.stderr, mininterval=0.5, dynamic_ncols=True
            )

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def note(self, message: str) -> None:
        """Notes go to stderr even when bars are off: they explain a choice the person did not make."""
        tqdm.write(message, file=sys.stderr)
