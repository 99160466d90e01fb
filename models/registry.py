"""One registry, one way to name a model: spec strings are parsed and loaded through here.

Backends are tried in order; the first whose ``parse`` claims a spec loads it. The registry is built by a
function rather than kept in a module global, so tests and applications can assemble their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from catalens.models.auto import AUTO_SPEC, PREFERRED, Resolution, resolve_auto
from catalens.models.base import ImageTextEncoder, LoadOptions, ModelInfo, ModelSpec
from catalens.models.errors import UnknownModelError
from catalens.models.hub import reachable

#: The default spec for new stores: resolved per machine by :func:`models.auto.resolve_auto`.
DEFAULT_MODEL = AUTO_SPEC


class Backend(Protocol):
    """What the registry needs from a model backend."""

    name: str

    def parse(self, text: str) -> ModelSpec | None: ...

    def list_models(self) -> list[ModelInfo]: ...

    def load(self, spec: ModelSpec, options: LoadOptions) -> ImageTextEncoder: ...


class ModelRegistry:
    """An ordered set of backends that turns spec strings into loaded encoders."""

    def __init__(self, backends: Sequence[Backend], probe: Callable[[str], bool] = reachable) -> None:
        self._backends = {b.name: b for b in backends}
        self._probe = probe

    def resolve(self, text: str, options: LoadOptions | None = None) -> tuple[ModelSpec, str | None]:
        """Parse a spec, resolving ``auto`` first; returns the spec and, for ``auto``, the one-line reason.

        Raises:
            UnknownModelError: the (resolved) spec names nothing that exists.
        """
        if text.strip() != AUTO_SPEC:
            return self.parse(text), None
        resolution: Resolution = resolve_auto(options, self._probe)
        return self.parse(resolution.spec), resolution.reason

    def parse(self, text: str) -> ModelSpec:
        """Parse a spec string.

        Raises:
            UnknownModelError: no backend recognises the spec (a ``ValueError``, listing valid choices).
        """
        if not text or not text.strip():
            raise UnknownModelError(text, "the spec is empty", [DEFAULT_MODEL, PREFERRED])
        for backend in self._backends.values():
            spec = backend.parse(text)
            if spec is not None:
                return spec
        raise UnknownModelError(text, "no backend recognises it", [b for b in self._backends])

    def load(self, text: str | ModelSpec, options: LoadOptions | None = None) -> ImageTextEncoder:
        """Parse (if needed) and load a model.

        Raises:
            UnknownModelError, ModelUnavailableError, ModelLoadError, DeviceUnavailableError.
        """
        spec = text if isinstance(text, ModelSpec) else self.resolve(text, options)[0]
        return self._backends[spec.backend].load(spec, options or LoadOptions())

    def list_models(self) -> list[ModelInfo]:
        """Every architecture each backend knows, with its weight tags."""
        return [info for backend in self._backends.values() for info in backend.list_models()]


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
