"""The one registry shape: an ordered set of backends that turns spec strings into specs, and specs into models.

Image–text models, captioners, text encoders and OCR engines each have a registry of this shape (open_clip's
model-config + pretrained-tag registry is the model followed). A backend claims a kind of spec:

* ``name`` and ``kinds``: the backend's name and the spec kinds it loads (usually just its name);
* ``prefixes``: the spec prefixes it owns (see :mod:`catalens.models.specs`);
* ``parse(parts)``: the parsed spec, or ``None`` when the text is not for this backend;
* ``entries()``: the rows it lists (architectures and tags, short names and spec patterns, engine names);
* ``load(spec, ...)``: the loaded model; its arguments differ per family, so each family's registry calls it.

The registry splits the text once, asks each backend in order, and raises one kind of error,
:class:`~catalens.models.errors.UnknownModelError` (a ``ValueError`` listing the valid choices), for text no
backend claims. Registries are built by functions, never kept in module globals, so tests and applications can
assemble their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from catalens.models.errors import UnknownModelError
from catalens.models.specs import SpecParts, SpecRefusedError, did_you_mean, split_spec

SpecT = TypeVar("SpecT")
SpecT_co = TypeVar("SpecT_co", covariant=True)
BackendT = TypeVar("BackendT", bound="Backend[Any]")


class Backend(Protocol[SpecT_co]):
    """What every registry needs from a backend (loading is family-specific; see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> tuple[str, ...]: ...

    @property
    def prefixes(self) -> tuple[str, ...]: ...

    def parse(self, parts: SpecParts) -> SpecT_co | None: ...

    def entries(self) -> Sequence[Any]: ...


class Registry(Generic[SpecT, BackendT]):
    """An ordered set of backends of one family; subclasses add ``load`` and the family's wording.

    Class attributes:
        empty_reason: the reason an empty spec is refused.
        unknown_reason: the reason a spec that no backend claims is refused.
    """

    empty_reason: ClassVar[str] = "the spec is empty"
    unknown_reason: ClassVar[str] = "no backend recognises it"

    def __init__(self, backends: Sequence[BackendT]) -> None:
        self._backends = {backend.name: backend for backend in backends}
        self.prefixes = frozenset(prefix for backend in backends for prefix in backend.prefixes)

    @property
    def backends(self) -> list[BackendT]:
        """The backends, in the order they are asked."""
        return list(self._backends.values())

    def choices(self) -> list[str]:
        """The valid choices an error lists: every backend's entry names."""
        return [entry.name for backend in self._backends.values() for entry in backend.entries()]

    def empty_choices(self) -> list[str]:
        """The choices listed when the spec is empty."""
        return self.choices()

    def suggestions(self) -> list[str]:
        """The names a "did you mean" hint may offer for an unknown spec (none by default)."""
        return []

    def entries(self) -> list[Any]:
        """Every row each backend lists, in backend order."""
        return [entry for backend in self._backends.values() for entry in backend.entries()]

    def parse(self, text: str) -> SpecT:
        """Parse a spec string.

        Raises:
            UnknownModelError: the spec is empty, a backend refuses it, or no backend recognises it (a
                ``ValueError`` listing valid choices).
        """
        if not text or not text.strip():
            raise UnknownModelError(text, self.empty_reason, self.empty_choices())
        parts = split_spec(text, self.prefixes)
        for backend in self._backends.values():
            try:
                spec = backend.parse(parts)
            except SpecRefusedError as refused:
                choices = self.choices() if refused.list_choices else None
                raise UnknownModelError(parts.text, refused.reason, choices) from None
            if spec is not None:
                return spec
        raise self.unknown(text, parts)

    def unknown(self, text: str, parts: SpecParts) -> UnknownModelError:
        """The error for a spec that no backend recognises."""
        hint = did_you_mean(parts.text, self.suggestions())
        return UnknownModelError(text, f"{hint}{self.unknown_reason}", self.choices())

    def backend_for(self, kind: str, spec: str) -> BackendT:
        """The backend that loads specs of ``kind``.

        Args:
            kind: the parsed spec's kind.
            spec: the canonical spec, for the error.

        Raises:
            UnknownModelError: no backend loads that kind (only for a hand-built spec of a kind this registry was
                built without).
        """
        backend = next((b for b in self._backends.values() if kind in b.kinds), None)
        if backend is None:
            raise UnknownModelError(spec, self.unknown_reason, self.choices())
        return backend
