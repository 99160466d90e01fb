"""What an openclipart drawing is: its folders' meaning (kept or dropped, zero-shot kind) and its texts.

Why a module of its own: these are tables and many small, tested string rules (``apple_bitten_dan_gerhard_01``
→ "apple bitten", "Apple (B and W)" → "apple", "Aircraft2" → "aircraft"), while ``clipart_data`` keeps to the
scan, the held-out split and the pixels. Texts come from the Dublin Core metadata in the SVGs of Debian's
``openclipart-svg``. No third-party imports.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: Folders left out (a prefix of the relative folder matches), with the reason. Everything else is kept.
DROPPED: dict[str, str] = {
    "shapes": "abstract shapes: 1,378 stars, arrows, callouts, flowchart and jigsaw pieces",
    "buttons": "web buttons",
    "signs_and_symbols": "flags, map symbols, LED digits, hazard and weather signs: symbols, not things",
    "computer/icons": "desktop-theme icons (toolbar actions, mime types, app logos): abstract pictograms",
    "computer/buttons": "web buttons",
    "computer/folders": "file-manager folder icons",
    "computer/diagrams": "network diagrams",
    "special": "gradients, patterns, CD-label templates and examples: not pictures of things",
    "logos": "logos and trademarks",
    "decorations": "ornaments, knots and flourishes: abstract",
    "geography": "map outlines of countries and regions (geography/astronomy is kept)",
    "transportation/aiga-symbols": "AIGA travel pictograms: signs",
    "transportation/roadsigns": "road signs: signs, mostly text and arrows",
    "recreation/games/cards": "five near-identical 54-card decks: the card face is a printed symbol",
    "unsorted": "untitled ('Various Cliparts') with Italian file names; the folder has no category",
}

#: Exceptions inside dropped folders: kept because they show things (planets, clocks, coins, device icons).
KEPT_INSIDE_DROPPED: tuple[str, ...] = (
    "geography/astronomy",
    "signs_and_symbols/clocks",
    "signs_and_symbols/money",
    "computer/icons/etiquette-theme/devices",
    "computer/icons/flat-theme/device",
    "computer/icons/lemon-theme/devices",
)

#: Drawings dropped by their keywords wherever they are filed: signs and desktop icons outside the sign folders.
DROPPED_KEYWORDS: dict[str, str] = {
    "roadsign": "road signs filed under transportation/",
    "mimetypes": "file-type icons",
    "mime-types": "file-type icons",
    "desktop icon": "desktop icons filed under computer/",
}

#: Authors whose titles are not English (Italian): their drawings keep the pictures, the keywords and the
#: folder phrases, and take an English keyword or the folder phrase as title. Never held out.
NON_ENGLISH_TITLES: tuple[str, ...] = ("rollandin",)  # lower-case parts of the names (spelt several ways)


def non_english(author: str) -> bool:
    """Whether ``author`` titles drawings in another language (see :data:`NON_ENGLISH_TITLES`)."""
    return any(part in author.lower() for part in NON_ENGLISH_TITLES)


#: Zero-shot kind of an image, from its folder (longest matching prefix wins; ``None``: no kind). Drinks
#: (food/beverages) count as food; boats, weapons, toys and furniture have too few drawings to be a kind.
KIND_BY_FOLDER: dict[str, str | None] = {
    "animals": "animal",
    "food": "food",
    "plants": "plant",
    "people/clothing": "clothing",
    "transportation/vehicles": "vehicle",
    "transportation/boating": None,
    "tools": "tool",
    "tools/weapons": None,
    "tools/toys": None,
    "computer/hardware": "electronics",
    "computer/connectors": "electronics",
    "computer/network": "electronics",
    "electronics": "electronics",
    "office": "office supplies",
    "office/telephone": "electronics",
    "buildings": "building",
    "buildings/furniture": None,
    "recreation/music": "musical instrument",
    "recreation/sports": "sports",
    "science/astronomy": "space",
    "geography/astronomy": "space",
}

#: Zero-shot labels of the held-out slice, in a fixed order.
KINDS: tuple[str, ...] = tuple(sorted({k for k in KIND_BY_FOLDER.values() if k}))

#: Folder names as people say them (otherwise ``_`` and ``-`` become spaces).
FOLDER_PHRASES: dict[str, str] = {
    "housecats": "house cats",
    "big_cats": "big cats",
    "bugs": "bugs and insects",
    "bodypart": "body parts",
    "smilies": "smileys",
    "stickmen": "stick figures",
    "breads_and_carbs": "bread and pasta",
    "meats_and_eggs": "meat and eggs",
    "CD_Player": "cd player",
    "boating": "boats and sailing",
    "hummers": "hummer",
}

GENERIC_TITLES = {
    "",
    "untitled",
    "various cliparts",
    "clipart",
    "clip art",
    "image",
    "picture",
    "drawing",
    "new document",
    "new document 1",
    "layer 1",
    "title",
    "svg",
    "no title",
}
_GENERIC_KEYWORDS = {
    "clipart",
    "clip art",
    "openclipart",
    "open clip art",
    "svg",
    "png",
    "image",
    "picture",
    "media",
    "public domain",
    "externalsource",
    "how i did it",
    "remix",
    "unsorted",
    "inkscape",
    "hash",
    "icon",
    "icons",
    "appicon",
    "lemon theme icon",
    "stock",
    "theme",
    "desktop",
    "filesystem",
    "networksym",
    "action",
}
_FILEISH = re.compile(r"^(?:svg|png|jpe?g|gif|inkscape|sodipodi|0\d+|v\d+)$")
_TRAILING_VARIANT = re.compile(r"^(?:\d+|[a-z]|bw|color|colour|web)$")
TEMPLATE_TITLE = re.compile(r"^clip ?art by ")
_BLACK_AND_WHITE = re.compile(r"\(\s*(?:b\s*(?:and|&|/)\s*w|black\s+(?:and|&)\s+white|bw)\s*\)", re.I)


@dataclass(frozen=True)
class SvgMeta:
    """The Dublin Core fields of one SVG's ``<metadata>`` (raw, entity-decoded)."""

    title: str = ""
    description: str = ""
    keywords: tuple[str, ...] = ()
    creator: str = ""


def _field(block: str, tag: str) -> str:
    match = re.search(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", block, re.S)
    return plain_text(match.group(1)) if match else ""


def plain_text(raw: str) -> str:
    """XML text content as one line: CDATA opened, tags removed, entities decoded."""
    raw = re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", raw, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", raw)).split())


def parse_svg_metadata(svg: str) -> SvgMeta:
    """Read the work's title, description, keywords and creator from an SVG's RDF metadata.

    The work's own ``dc:title`` is the one outside the publisher/creator/rights agents, which carry
    ``dc:title`` elements of their own. Returns an empty :class:`SvgMeta` when there is no metadata.
    """
    work = re.search(r"<cc:Work\b.*?</cc:Work>", svg, re.S)
    if work is None:
        return SvgMeta()
    block = work.group(0)
    creator_block = re.search(r"<dc:creator\b.*?</dc:creator>", block, re.S)
    creator = _field(creator_block.group(0), "dc:title") if creator_block else ""
    bare = re.sub(r"<dc:(publisher|creator|rights|contributor)\b.*?</dc:\1>", "", block, flags=re.S)
    subject = re.search(r"<dc:subject\b.*?</dc:subject>", bare, re.S)
    keywords: list[str] = []
    if subject:
        items = re.findall(r"<rdf:li(?:\s[^>]*)?>(.*?)</rdf:li>", subject.group(0), re.S)
        if not items:  # a plain-text subject
            items = [_field(subject.group(0), "dc:subject")]
        for item in items:
            keywords += [k for k in re.split(r"[,;]", plain_text(item)) if k.strip()]
    return SvgMeta(
        title=_field(bare, "dc:title"),
        description=_field(bare, "dc:description"),
        keywords=tuple(k.strip() for k in keywords),
        creator=creator,
    )


def word_list(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text``."""
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def clean_title(raw: str, author: str = "") -> str:
    """A title as people type it: lower case, no author, no ``01``/``svg``/variant suffix, single spaces.

    Numbers that are part of the name stay ("8 ball", "5 port hub"); zero-padded numbers and a trailing
    number or letter (a variant: "rose 2", "box r") go.
    """
    text = _BLACK_AND_WHITE.sub(" ", html.unescape(raw))
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)  # camelCase file names
    text = re.sub(r"\b([a-zA-Z]{3,})\d{1,2}\b", r"\1", text)  # "Aircraft2": a variant number glued on
    text = re.sub(r"[_/\\.]+|\s-+\s", " ", text).lower()
    text = re.sub(r"[^\w' &-]+", " ", text)
    words = [w.strip("-'") for w in text.split()]
    words = [w for w in words if w and not _FILEISH.match(w)]
    while len(words) > 1 and _TRAILING_VARIANT.match(words[-1]):
        words.pop()
    author_words = word_list(author)
    if author_words and len(words) > len(author_words) and words[-len(author_words) :] == author_words:
        words = words[: -len(author_words)]
    if words and words[-1] in {"by", "from"}:
        words = words[:-1]
    return " ".join(words)


def _is_author_tail(tail: list[str], author: list[str], truncated: bool) -> bool:
    """Whether file-name words ``tail`` spell ``author`` (its last word cut short when the name was)."""
    if not tail or len(tail) > len(author) or len("".join(tail)) < 3:
        return False
    if tail[:-1] != author[: len(tail) - 1]:
        return False
    last, whole = tail[-1], author[len(tail) - 1]
    if last == whole:
        return len(tail) == len(author) or truncated
    return truncated and whole.startswith(last)


def title_from_filename(stem: str, authors: Iterable[str]) -> str:
    """A title from a file name, with the author's (possibly truncated) name and variant suffixes removed.

    ``apple_bitten_dan_gerhard_01`` with author "Dan Gerhards" known → "apple bitten". Debian cut long
    names to 25 characters, so a truncated author name counts when the stem is that long.
    """
    words = [w for w in re.split(r"[_\-\s.]+", stem.lower()) if w]
    while words and _TRAILING_VARIANT.match(words[-1]):
        words.pop()
    truncated = len(stem) >= 22
    author_words = [w for w in (word_list(a) for a in authors) if w]
    for start in range(len(words)):
        tail = words[start:]
        if any(_is_author_tail(tail, a, truncated) for a in author_words):
            words = words[:start]
            break
    return clean_title(" ".join(words))


def clean_keywords(keywords: Iterable[str], author: str, title: str) -> tuple[str, ...]:
    author_key = " ".join(word_list(author))
    out = []
    for keyword in keywords:
        k = clean_title(keyword)
        if not k or k in _GENERIC_KEYWORDS or k == author_key or k == title or len(k) > 40 or k.isdigit():
            continue
        out.append(k)
    return tuple(dict.fromkeys(out))[:16]


def clean_author(creator: str) -> str:
    """An author's name without e-mail addresses or notes in brackets; ``""`` for the library itself."""
    name = " ".join(re.sub(r"\(.*?\)|<.*?>|\S+@\S+", " ", creator).split())
    return "" if name.lower() in {"", "open clip art library", "openclipart", "unknown", "anonymous"} else name


def shares_a_word(a: str, b: str) -> bool:
    """Whether two titles share a word (or a 4-letter stem: "aircraft" and "aircrafts")."""
    return any(x[:4] == y[:4] for x in a.split() for y in b.split() if len(x) >= 3 and len(y) >= 3)


def usable_title(title: str, author_key: str) -> bool:
    """Whether a cleaned title names something: not generic, not the author, not just digits."""
    return title not in GENERIC_TITLES and title != author_key and bool(re.search(r"[a-z]{2}", title))


# -- folders ----------------------------------------------------------------------------------------------


def folder_phrase(name: str) -> str:
    """A folder name as people say it: ``breads_and_carbs`` → "bread and pasta", ``big_cats`` → "big cats"."""
    return FOLDER_PHRASES.get(name, re.sub(r"[_\-]+", " ", name).lower())


def matching_prefix(folder: str, table: Iterable[str]) -> str | None:
    best = None
    for prefix in table:
        if (folder == prefix or folder.startswith(prefix + "/")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def drop_reason(folder: str) -> str | None:
    """Why a folder's images are left out, or ``None`` when they are kept."""
    if matching_prefix(folder, KEPT_INSIDE_DROPPED):
        return None
    prefix = matching_prefix(folder, DROPPED)
    return DROPPED[prefix] if prefix else None


def kind_of(folders: Sequence[str]) -> str | None:
    """The zero-shot kind of an image filed in ``folders`` (the first folder, its real one, decides ties)."""
    kinds = []
    for folder in folders:
        prefix = matching_prefix(folder, KIND_BY_FOLDER)
        kinds.append(KIND_BY_FOLDER[prefix] if prefix else None)
    named = {k for k in kinds if k}
    if len(named) == 1:
        return named.pop()
    return kinds[0] if named else None


# -- one drawing's record ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipartRecord:
    """One drawing: where it is, what it is called, who drew it."""

    path: str  # relative to the PNG root, the real file (not a symlink)
    folders: tuple[str, ...]  # every folder it is filed in (symlinks included), relative
    title: str
    title_source: Literal["svg", "file", "keyword", "folder"]
    keywords: tuple[str, ...]
    description: str
    categories: tuple[str, ...]  # folder phrases, top first: ("food", "fruit")
    author: str
    kind: str | None  # zero-shot kind, from the folder

    def texts(self) -> list[str]:
        """The training texts of this drawing: title, keywords, category phrases (deduplicated, in order)."""
        return list(dict.fromkeys([self.title, *self.keywords, *self.categories]))


def keyword_drop_reason(meta: SvgMeta) -> str | None:
    """Why a drawing is dropped by its keywords (a road sign, a desktop icon), or ``None``."""
    words = {" ".join(word_list(k)) for k in meta.keywords}
    for keyword, reason in DROPPED_KEYWORDS.items():
        if keyword in words or (keyword == "desktop icon" and {"desktop", "icon"} <= words):
            return reason
    return None


def template_titles(metas: dict[str, SvgMeta], authors: Sequence[str]) -> frozenset[str]:
    """Metadata titles given to at least three drawings whose file names say three different things."""
    names: dict[str, set[str]] = {}
    for rel, meta in metas.items():
        names.setdefault(clean_title(meta.title, meta.creator), set()).add(title_from_filename(Path(rel).stem, authors))
    return frozenset(t for t, files in names.items() if len(files) >= 3)


def make_record(
    rel: str,
    folders: tuple[str, ...],
    meta: SvgMeta,
    authors: Sequence[str],
    template_titles: frozenset[str] = frozenset(),
) -> ClipartRecord:
    """One kept drawing's record: the title chosen from metadata, file name, keywords or folder, in that order.

    A metadata title is not trusted when it is a template ("Clipart by Nicu Buculei - pear" on an apple,
    "R16 sibmission" on many different drawings: ``template_titles``) and shares no word with the file name.
    """
    author = clean_author(meta.creator)
    author_key = " ".join(word_list(author))
    title = clean_title(meta.title, author)
    from_file = title_from_filename(Path(rel).stem, [*authors, author] if author else authors)
    source: Literal["svg", "file", "keyword", "folder"] = "svg"
    templated = TEMPLATE_TITLE.match(title) or title in template_titles
    if not usable_title(title, author_key) or (templated and not shares_a_word(title, from_file)):
        title, source = from_file, "file"
    categories: list[str] = []
    for folder in folders:
        categories += [folder_phrase(part) for part in folder.split("/")]
    categories = list(dict.fromkeys(categories))
    keywords = clean_keywords(meta.keywords, author, title)
    if not usable_title(title, author_key) or non_english(author):
        extra = [k for k in keywords if not any(shares_a_word(k, c) for c in categories)]
        title, source = (extra[0], "keyword") if extra else (categories[-1], "folder")
        keywords = tuple(k for k in keywords if k != title)
    description = plain_text(meta.description)
    description = "" if clean_title(description) in {title, *GENERIC_TITLES} else description[:200]
    return ClipartRecord(
        path=rel,
        folders=folders,
        title=title,
        title_source=source,
        keywords=keywords,
        description=description,
        categories=tuple(categories),
        author=author,
        kind=kind_of(folders),
    )
