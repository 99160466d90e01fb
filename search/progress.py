"""Progress rendering for the CLI: the indexer's progress events drawn as tqdm bars on stderr."""

from __future__ import annotations

import sys

from tqdm import tqdm


class TqdmProgress:
    """A :class:`catalens.indexer.progress.ProgressSink` that draws one bar per phase (rate and ETA).

    Args:
        enabled: draw bars (notes are written either way).
        unit: what is counted: items by default; ``"B"`` for bytes, shown scaled (kB, MB) as copies are.
    """

    def __init__(self, enabled: bool = True, unit: str = " items") -> None:
        self._enabled = enabled
        self._unit = unit
        self._bar: tqdm | None = None

    def start(self, phase: str, total: int | None) -> None:
        self.finish()
        if self._enabled:
            self._bar = tqdm(
                total=total,
                desc=phase,
                unit=self._unit,
                unit_scale=self._unit == "B",
                file=sys.stderr,
                mininterval=0.5,
                dynamic_ncols=True,
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
