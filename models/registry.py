"""One registry, one way to name a model: image–text model specs are parsed and loaded through here.

Backends are tried in order; the first whose ``parse`` claims a spec loads it (the shape every catalens registry
shares, see :mod:`catalens.models.backends`). The registry is built by a function rather than kept in a module
global, so tests and applications can assemble their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from catalens.models.auto import AUTO_SPEC, PREFERRED, Resolution, resolve_auto
from catalens.models.backends import Backend, Registry
from catalens.models.base import ImageTextEncoder, LoadOptions, ModelInfo, ModelSpec
from catalens.models.hub import reachable

#: The default spec for new stores: resolved per machine by :func:`models.auto.resolve_auto`.
DEFAULT_MODEL = AUTO_SPEC


class ImageTextBackend(Backend[ModelSpec], Protocol):
    """What the registry needs from an image–text model backend."""

    def entries(self) -> list[ModelInfo]: ...

    def load(self, spec: ModelSpec, options: LoadOptions) -> ImageTextEncoder: ...


class ModelRegistry(Registry[ModelSpec, ImageTextBackend]):
    """An ordered set of backends that turns spec strings into loaded image–text encoders."""

    def __init__(self, backends: Sequence[ImageTextBackend], probe: Callable[[str], bool] = reachable) -> None:
        super().__init__(backends)
        self._probe = probe

    def choices(self) -> list[str]:
        """The backends' names (each backend lists its own valid choices when it refuses a spec)."""
        return [backend.name for backend in self.backends]

    def empty_choices(self) -> list[str]:
        return [DEFAULT_MODEL, PREFERRED]

    def resolve(self, text: str, options: LoadOptions | None = None) -> tuple[ModelSpec, str | None]:
        """Parse a spec, resolving ``auto`` first; returns the spec and, for ``auto``, the one-line reason.

        Raises:
            UnknownModelError: the (resolved) spec names nothing that exists.
        """
        if text.strip() != AUTO_SPEC:
            return self.parse(text), None
        resolution: Resolution = resolve_auto(options, self._probe)
        return self.parse(resolution.spec), resolution.reason

    def load(self, text: str | ModelSpec, options: LoadOptions | None = None) -> ImageTextEncoder:
        """Parse (if needed) and load a model.

        Raises:
            UnknownModelError, ModelUnavailableError, ModelLoadError, DeviceUnavailableError.
        """
        spec = text if isinstance(text, ModelSpec) else self.resolve(text, options)[0]
        return self.backend_for(spec.backend, spec.canonical).load(spec, options or LoadOptions())

    def list_models(self) -> list[ModelInfo]:
        """Every architecture each backend knows, with its weight tags."""
        return self.entries()


def default_registry() -> ModelRegistry:
    """The registry with every backend catalens ships.

    Backends are imported here, not at module import, so that importing :mod:`models` stays free of torch.
    """
    from catalens.models.mini import MiniBackend
    from catalens.models.openclip import OpenClipBackend

    return ModelRegistry([MiniBackend(), OpenClipBackend()])


def parse_spec(text: str) -> ModelSpec:
    """Parse a spec string with the default registry. See :mod:`models.openclip` for the grammar."""
    return default_registry().parse(text)


def load_model(text: str | ModelSpec, options: LoadOptions | None = None) -> ImageTextEncoder:
    """Load a model by spec with the default registry."""
    return default_registry().load(text, options)


def list_models() -> list[ModelInfo]:
    """List every known architecture and tag with the default registry."""
    return default_registry().list_models()
