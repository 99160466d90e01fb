"""Typed errors of tagging jobs: a bad taxonomy, a calibration that does not fit, a decision that cannot apply."""

from __future__ import annotations

from catalens.indexer.errors import IndexerError


class TaggingError(IndexerError):
    """Base class of every tagging error."""


class TaxonomyError(TaggingError):
    """A mistake in a taxonomy file; the message names the file and line (YAML) or the key path.

    Attributes:
        source: the file (or ``<taxonomy>`` for text).
        line: the 1-based line of the mistake, when the parser knows it.
        key: the key path of the mistake (``attributes.heel height.applies_to``), when there is one.
    """

    def __init__(self, message: str, *, source: str = "", line: int | None = None, key: str | None = None) -> None:
        self.source = source
        self.line = line
        self.key = key
        where = source + (f":{line}" if line is not None else "")
        prefix = f"{where}: " if where else ""
        path = f"{key}: " if key and key not in message else ""
        super().__init__(f"{prefix}{path}{message}")


class CalibrationError(TaggingError):
    """A calibration or labelled file that cannot be used: unreadable, another taxonomy or model, bad rows."""


class TagDecisionError(TaggingError):
    """A person's decision that cannot apply: an unknown item, attribute or value, or no tagging run yet."""
