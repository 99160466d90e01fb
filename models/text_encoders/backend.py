"""What both text encoder backends share: reading their specs, and the one way a text encoder is loaded.

A backend owns a prefix (``st:``, ``mclip:``) whose location is a hub id (in the backend's default organisation
when it has none) or an existing directory, and recognises a bare directory by a marker file. Loading plans the
placement, then loads from the directory, from the Hugging Face cache without the network, or from the hub after
one short probe (see :func:`catalens.models.hub.loading_from_hub`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from catalens.models.base import LoadOptions
from catalens.models.errors import ModelUnavailableError
from catalens.models.hub import cache_locations, loading_from_hub
from catalens.models.specs import SpecParts, parse_location
from catalens.models.text_encoders.types import TextEncoder, TextEncoderSpec, TextKind

if TYPE_CHECKING:
    from catalens.models.device import Placement

#: Weight files a hub text model may have (one is enough).
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class TextEncoderBackend:
    """The base of the text encoder backends; subclasses set the class attributes and the three hooks.

    Class attributes:
        name: the spec prefix and kind (``st``, ``mclip``).
        default_org: the hub organisation of a prefixed name without one.
        patterns: the spec patterns listed as valid choices.
    """

    name: TextKind
    default_org: ClassVar[str]
    patterns: ClassVar[tuple[str, ...]]

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def prefixes(self) -> tuple[str, ...]:
        return (self.name,)

    def parse(self, parts: SpecParts) -> TextEncoderSpec | None:
        """``PREFIX:LOCATION`` of this backend, or a bare directory it recognises; else ``None``.

        Raises:
            SpecRefusedError: the prefix is this backend's but the location is empty, missing or malformed.
        """
        if parts.prefix == self.name:
            location = parse_location(self.name, parts.name, must_exist=True, default_org=self.default_org)
            return TextEncoderSpec(self.name, location.local, location.value)
        if parts.prefix is None:
            path = Path(parts.text).expanduser()
            if path.is_dir() and self.recognises(path.resolve()):
                return TextEncoderSpec(self.name, True, str(path.resolve()))
        return None

    def entries(self) -> list[str]:
        return list(self.patterns)

    def load(self, spec: TextEncoderSpec, options: LoadOptions) -> TextEncoder:
        """Load ``spec`` from its directory, the cache (offline) or the hub (see the module docstring).

        Raises:
            ModelUnavailableError: a hub model is not cached and cannot be downloaded, or its cached copy is broken.
            ModelLoadError: a local directory (or a cached snapshot) is broken.
            DeviceUnavailableError: the requested device does not exist.
        """
        from catalens.models.device import plan_placement

        placement = plan_placement(options.device, options.precision)
        cached = not spec.local and self.hub_cached(spec, options.cache_dir)

        def unavailable(cause: str) -> ModelUnavailableError:
            return ModelUnavailableError(spec.canonical, cache_locations(options.cache_dir), cause)

        with loading_from_hub(spec.canonical, local=spec.local, cached=cached, unavailable=unavailable):
            return self.build(spec, placement, options, local_only=spec.local or cached)

    def recognises(self, directory: Path) -> bool:
        """Whether a directory holds a model of this backend."""
        raise NotImplementedError

    def hub_cached(self, spec: TextEncoderSpec, cache_dir: str | None) -> bool:
        """Whether every file a hub model needs is in the local cache, so it can load without the network."""
        raise NotImplementedError

    def build(self, spec: TextEncoderSpec, placement: Placement, options: LoadOptions, local_only: bool) -> TextEncoder:
        """Load the model (inside :func:`~catalens.models.hub.loading_from_hub`, which maps its failures)."""
        raise NotImplementedError
