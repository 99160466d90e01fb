"""Shop vocabulary for catalens-mini's training texts, and which pictures may be mirrored.

Why: catalens-mini learned emoji names, but shoppers and merchandisers name *departments* ("kitchenware",
"footwear", "office supplies"), and the zero-shot labels of a catalog are such words. Each emoji's thing is
mapped to the retail department it is sold in — from its CLDR subgroup, overridden by words in its name and
keywords (a running shoe is in CLDR's "clothing" subgroup, but sold as footwear) — and each department has
the several names shops use for it. The departments are a generic retail taxonomy (the demo catalog's
category names are among them, as they are in any shop's), never tuned on an evaluation set.

Mirroring: a flipped picture of a shoe is still a shoe, but a flipped flag, arrow, letter or a "left-facing"
thing is another thing; :func:`mirrorable` says which training pictures may be flipped.
"""

from __future__ import annotations

import re

#: Department → the names shops give it (the first is the plain one).
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "clothing": ("clothing", "clothes", "apparel", "fashion"),
    "shoes": ("shoes", "footwear"),
    "accessories": ("accessories", "fashion accessories", "jewellery and bags"),
    "food": ("food", "groceries", "fresh food"),
    "drinks": ("drinks", "beverages"),
    "kitchen": ("kitchen", "kitchenware", "cookware and tableware"),
    "household": ("household", "home goods", "home and living"),
    "electronics": ("electronics", "gadgets", "consumer electronics"),
    "stationery": ("stationery", "office supplies", "school supplies"),
    "sports": ("sports", "sporting goods", "sports equipment"),
    "toys": ("toys", "toys and games", "games"),
    "music": ("music", "musical instruments"),
    "tools": ("tools", "hardware", "tools and DIY"),
    "garden": ("garden", "plants and flowers"),
    "health": ("health", "pharmacy", "medical supplies"),
    "crafts": ("crafts", "arts and crafts"),
    "vehicles": ("vehicles", "cars and bikes"),
    "animals": ("animals", "pets and animals"),
    "books": ("books", "books and magazines"),
}

#: CLDR emoji subgroup → department (subgroups not listed are not goods a shop sells).
SUBGROUP_DEPARTMENT: dict[str, str] = {
    "clothing": "clothing",
    "food-fruit": "food",
    "food-vegetable": "food",
    "food-prepared": "food",
    "food-asian": "food",
    "food-sweet": "food",
    "drink": "drinks",
    "dishware": "kitchen",
    "household": "household",
    "light-video": "electronics",
    "phone": "electronics",
    "computer": "electronics",
    "sound": "electronics",
    "book-paper": "books",
    "writing": "stationery",
    "office": "stationery",
    "mail": "stationery",
    "sport": "sports",
    "game": "toys",
    "musical-instrument": "music",
    "tool": "tools",
    "science": "tools",
    "medical": "health",
    "plant-flower": "garden",
    "plant-other": "garden",
    "arts-crafts": "crafts",
    "transport-ground": "vehicles",
    "animal-mammal": "animals",
    "animal-bird": "animals",
}

#: Words in a name or keywords that decide the department before the subgroup does.
WORD_DEPARTMENT: dict[str, str] = {
    "shoe": "shoes",
    "shoes": "shoes",
    "boot": "shoes",
    "boots": "shoes",
    "sandal": "shoes",
    "sneaker": "shoes",
    "heel": "shoes",
    "heeled": "shoes",
    "bag": "accessories",
    "handbag": "accessories",
    "purse": "accessories",
    "backpack": "accessories",
    "ring": "accessories",
    "necklace": "accessories",
    "glasses": "accessories",
    "sunglasses": "accessories",
    "goggles": "accessories",
    "watch": "accessories",
    "crown": "accessories",
    "lipstick": "accessories",
    "umbrella": "accessories",
    "notebook": "stationery",
    "ledger": "stationery",
    "pencil": "stationery",
    "pen": "stationery",
    "crayon": "stationery",
    "scissors": "stationery",
    "teddy": "toys",
    "doll": "toys",
    "kite": "toys",
    "yo-yo": "toys",
    "puzzle": "toys",
    "knife": "kitchen",
    "spoon": "kitchen",
    "chopsticks": "kitchen",
    "teapot": "kitchen",
    "mug": "kitchen",
}

#: Clip-art folder names (openclipart's categories, as phrases) → department.
FOLDER_DEPARTMENT: dict[str, str] = {
    "food": "food",
    "fruit": "food",
    "vegetables": "food",
    "dairy": "food",
    "desserts": "food",
    "breads and carbs": "food",
    "meats and eggs": "food",
    "beverages": "drinks",
    "alcohol": "drinks",
    "animals": "animals",
    "transportation": "vehicles",
    "tools": "tools",
    "computer": "electronics",
    "electronics": "electronics",
    "office": "stationery",
    "education": "stationery",
    "plants": "garden",
    "sports": "sports",
    "music": "music",
    "toys": "toys",
    "games": "toys",
    "containers": "household",
}

#: Groups and words whose pictures mean something else mirrored.
_UNMIRRORABLE_GROUPS = frozenset({"flags", "symbols"})
_UNMIRRORABLE_WORDS = re.compile(r"\b(left|right|leftwards|rightwards|clockwise|anticlockwise|counterclockwise)\b")


def department(label: str, tags: tuple[str, ...], subgroup: str) -> str | None:
    """The department an emoji's thing is sold in, or ``None`` when it is not a thing shops sell."""
    for word in re.findall(r"[a-z][a-z-]*", " ".join((label, *tags)).lower()):
        if word in WORD_DEPARTMENT:
            return WORD_DEPARTMENT[word]
    return SUBGROUP_DEPARTMENT.get(subgroup)


def picture_department(title: str, keywords: list[str], categories: list[str]) -> str | None:
    """The department of a clip-art drawing: from words in its title and keywords, else from its folders."""
    found = department(title, tuple(keywords), "")
    if found is not None:
        return found
    for category in reversed(categories):  # the deepest folder knows best
        if category.lower() in FOLDER_DEPARTMENT:
            return FOLDER_DEPARTMENT[category.lower()]
    return None


def department_texts(name: str, label: str) -> list[str]:
    """Training texts that name the department ``name`` alone and together with the thing ``label``."""
    names = DEPARTMENTS[name]
    texts = [*names, f"a product from {names[0]}", f"{names[0]} department", f"shop for {names[0]}"]
    texts += [f"a photo of a {names[0]}.", f"a product photo of {names[0]}"]  # as zero-shot prompts read
    texts += [f"{label}, {names[0]}", f"a {label} from the {names[-1]} aisle"]
    return texts


def mirrorable(label: str, group: str) -> bool:
    """Whether a picture of this emoji still shows the same thing when flipped left to right."""
    return group not in _UNMIRRORABLE_GROUPS and not _UNMIRRORABLE_WORDS.search(label.lower())
