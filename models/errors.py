"""Typed errors raised by the model layer.

The CLI and the HTTP service turn these into messages and exit codes; library code only raises them.
"""

from __future__ import annotations


class CatalensError(Exception):
    """Base class of every error catalens raises on purpose (model, indexer and query errors alike).

    It lives in the lowest layer so that :mod:`catalens.indexer` and :mod:`catalens.search` can derive from
    it without importing upwards; ``import catalens`` re-exports it.
    """


class ModelError(CatalensError):
    """Base class for every error the model layer raises."""


class BackendUnavailableError(ModelError):
    """A backend cannot run here: its Python package, binary or data files are missing.

    Subclasses name the kind of backend (``noun``) and alias ``name`` (e.g. ``engine``), so the message reads
    the same for every family: ``<noun> '<name>' is not available: <reason>. To install it: <hint>``.

    Attributes:
        name: the backend's spec.
        reason: what is missing.
        hint: how to install it.
    """

    noun = "backend"

    def __init__(self, name: str, reason: str, hint: str) -> None:
        self.name = name
        self.reason = reason
        self.hint = hint
        super().__init__(f"{self.noun} {name!r} is not available: {reason}. To install it: {hint}")


class UnknownModelError(ModelError, ValueError):
    """A spec names an architecture, tag or backend that does not exist.

    Subclasses ``ValueError`` so callers that validate user input can catch the standard type.
    """

    def __init__(self, spec: str, reason: str, choices: list[str] | None = None) -> None:
        self.spec = spec
        self.reason = reason
        self.choices = list(choices or [])
        message = f"unknown model spec {spec!r}: {reason}"
        if self.choices:
            shown = ", ".join(self.choices[:25])
            more = f" (and {len(self.choices) - 25} more; see `catalens models`)" if len(self.choices) > 25 else ""
            message += f". Valid choices: {shown}{more}"
        super().__init__(message)


class ModelUnavailableError(ModelError):
    """The weights for a valid spec are neither in a local cache nor downloadable.

    Attributes:
        spec: the model spec that was asked for.
        looked_in: the places searched for weights, in order.
        cause: a short description of why the download failed.
    """

    def __init__(self, spec: str, looked_in: list[str], cause: str) -> None:
        self.spec = spec
        self.looked_in = list(looked_in)
        self.cause = cause
        places = "; ".join(self.looked_in) if self.looked_in else "the Hugging Face cache"
        super().__init__(
            f"The weights for model {spec!r} are not available: they are not in the local cache ({places}) "
            f"and could not be downloaded ({cause}). To supply them, either copy a Hugging Face cache that "
            "holds them onto this machine and point HF_HOME at it, or pass a local checkpoint: "
            "--model ARCH:/path/to/weights.safetensors, or --model /path/to/dir with open_clip_config.json "
            "and the weights. Run `catalens models` to see the known specs."
        )


class ModelLoadError(ModelError):
    """A local checkpoint or config exists but cannot be turned into a model (corrupt, wrong shapes, ...)."""

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"cannot load model {spec!r}: {reason}")


class DeviceUnavailableError(ModelError):
    """An explicitly requested device does not exist on this machine."""

    def __init__(self, requested: str, reason: str) -> None:
        self.requested = requested
        self.reason = reason
        super().__init__(f"device {requested!r} is not available: {reason}")
