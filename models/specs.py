"""The one spec grammar: how a string names an image–text model, a captioner, a text encoder or an OCR engine.

Every spec has the shape ``[PREFIX:]NAME[:TAG]``:

* ``PREFIX`` is a word a backend claims (``hf-hub``, ``blip``, ``attributes``, ``st``, ``mclip``, ...); what follows
  it is the name, e.g. a hub id or a local path (``blip:Salesforce/blip-image-captioning-base``).
* without a known prefix, ``NAME:TAG`` is a name with a tag, e.g. an open_clip architecture and its pretrained
  weights (``ViT-B-32:laion2b_s34b_b79k``);
* otherwise the whole text is the name: a short name (``blip``, ``catalens-mini``, ``rapidocr``) or a path.

:func:`split_spec` splits a string once, for every registry; the backends then read the parts. This module also
holds the helpers the backends share: the "did you mean" suggestions and the hub-id-or-directory rule.
Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

#: A Hugging Face hub id: ``NAME`` or ``ORG/NAME``.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_PATH_STARTS = ("/", "./", "../", "~")


@dataclass(frozen=True)
class SpecParts:
    """A spec string split by the grammar in the module docstring.

    Attributes:
        text: the whole spec, without surrounding whitespace.
        prefix: the backend prefix before the first ``:``, when the registry knows it; else ``None``.
        name: what follows the prefix (stripped), or the text before the first ``:``, or the whole text.
        tag: the text after the first ``:`` when there is no known prefix (``None`` without a ``:``).
    """

    text: str
    prefix: str | None
    name: str
    tag: str | None


def split_spec(text: str, prefixes: Collection[str] = ()) -> SpecParts:
    """Split a spec into prefix, name and tag.

    Args:
        text: the spec as the user typed it.
        prefixes: the prefixes the registry's backends claim.

    Returns:
        The parts; ``parts.text`` is ``text`` stripped.
    """
    text = text.strip()
    head, sep, rest = text.partition(":")
    if not sep:
        return SpecParts(text, None, text, None)
    if head in prefixes:
        return SpecParts(text, head, rest.strip(), None)
    return SpecParts(text, None, head, rest)


def looks_like_path(text: str, suffixes: tuple[str, ...] = ()) -> bool:
    """Whether ``text`` is written as a local path (it starts like one, or ends with one of ``suffixes``)."""
    return text.startswith(_PATH_STARTS) or (bool(suffixes) and text.endswith(suffixes))


def close_matches(word: str, names: Sequence[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The names that ``word`` was most likely meant to be, best first (for typos in error messages)."""
    return difflib.get_close_matches(word, list(names), n=n, cutoff=cutoff)


def did_you_mean(word: str, names: Sequence[str]) -> str:
    """``"did you mean A or B? "`` for the names close to ``word``, or ``""`` when none is."""
    close = close_matches(word, names)
    return f"did you mean {' or '.join(close)}? " if close else ""


def closest_first(word: str, choices: Sequence[str]) -> list[str]:
    """``choices`` with the likeliest intended ones first, so a long list of valid choices starts with them."""
    close = close_matches(word, choices, n=5, cutoff=0.5)
    return close + [c for c in choices if c not in close]


class SpecRefusedError(ValueError):
    """A backend's ``parse`` got text meant for it (its prefix) that names nothing valid.

    The registry turns it into an :class:`~catalens.models.errors.UnknownModelError` for the spec, which lists the
    registry's valid choices (one backend does not know them all) unless ``list_choices`` is false.

    Attributes:
        reason: what is wrong with the spec.
        list_choices: whether the error should list the registry's choices (not when the spec's form is right and
            only the thing it names is missing).
    """

    def __init__(self, reason: str, *, list_choices: bool = True) -> None:
        self.reason = reason
        self.list_choices = list_choices
        super().__init__(reason)


@dataclass(frozen=True)
class Location:
    """Where a prefixed spec's model lives.

    Attributes:
        value: a hub id, or an absolute directory when ``local``.
        local: whether ``value`` is a local directory.
    """

    value: str
    local: bool


def parse_location(prefix: str, rest: str, *, must_exist: bool = False, default_org: str | None = None) -> Location:
    """Read the part after ``PREFIX:`` as a local directory or a hub id.

    Text written as a path, or naming something that exists, is a directory (made absolute); anything else must
    be a hub id.

    Args:
        prefix: the spec's prefix, for the messages.
        rest: the text after the prefix (stripped).
        must_exist: whether a directory must exist already (else loading says what is wrong with it).
        default_org: the organisation a hub id without one belongs to.

    Raises:
        SpecRefusedError: ``rest`` is empty, is neither a directory nor a hub id, or (``must_exist``) names no
            directory.
    """
    if not rest:
        raise SpecRefusedError(f"{prefix}: needs a hub id or a directory, e.g. {prefix}:ORG/NAME")
    path = Path(rest).expanduser()
    if looks_like_path(rest) or path.exists():
        if must_exist and not path.is_dir():
            raise SpecRefusedError(f"no such directory: {str(path.resolve())!r}", list_choices=False)
        return Location(str(path.resolve()), local=True)
    if not HUB_ID.match(rest):
        directory = "an existing directory" if must_exist else "a directory"
        raise SpecRefusedError(f"{rest!r} is neither {directory} nor a hub id (ORG/NAME)")
    if default_org and "/" not in rest:
        rest = f"{default_org}/{rest}"
    return Location(rest, local=False)
