"""Whether a caption is a sentence SynthRS's own caption grammar could produce.

:mod:`aerith.data.synthrs.language` writes six kinds of caption sentence
(overview, colour breakdown, relation to a land-cover feature, relation between
two objects, position, feature attribute). :func:`caption_problem` reads a
caption as one of them, checks what the generator always respects (articles
and number agree with their noun, colours belong to the category, a relation
suits its feature, list items are distinct and in the generator's order), then
writes the sentence again with the generator's own phrase functions and
requires the very same text. So it accepts exactly the sentences the grammar
can produce, whatever their truth for an image, and rejects the rest, such as
``"A white storage tank is a industrial with two storage tanks."``.

Used to report the share of well-formed captions a model writes (for example
before and after SCST, whose rewards can favour broken but rewarding text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from aerith.data.synthrs.language import (
    NUMBER_WORDS,
    OPENERS,
    REGION_PHRASES,
    RELATION_PHRASES,
    article,
    counted,
    join_list,
    noun_phrase,
)
from aerith.data.synthrs.layout import SCENE_CLASSES
from aerith.data.synthrs.scene import (
    CATEGORIES,
    COLOURS,
    FEATURE_PREDICATES,
    FEATURE_RELATIONS,
    OBJECT_RELATIONS,
    SIZE_WORDS,
)

# Attributes captions may state about land cover (see the painters in aerith.data.synthrs.grounds);
# farmland's are its crop colours, said of "the fields". The tests check every generated caption fits.
FEATURE_ATTRIBUTES = MappingProxyType(
    {
        "farmland": ("brown", "green", "yellow"),
        "forest": ("dense",),
        "residential area": ("dense",),
        "water": ("blue",),
        "sea": ("blue",),
        "runway": ("long",),
        "river": ("curved",),
    }
)
SCENE_NOUNS = tuple(sorted({c.noun for c in SCENE_CLASSES.values()}))
MAX_OVERVIEW_ITEMS = 3

_PLURALS = {c.plural: name for name, c in CATEGORIES.items()}
_NUMBERS = {w: n for n, w in enumerate(NUMBER_WORDS) if n >= 2}
_PHRASE_TO_REGION = {v: k for k, v in REGION_PHRASES.items()}
_PHRASE_TO_RELATION = {v: k for k, v in RELATION_PHRASES.items()}
_OBJECT_PHRASES = {RELATION_PHRASES[r]: r for r in (*OBJECT_RELATIONS, "right of")}


def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_CAT = _alt(CATEGORIES)
_COLOUR = _alt(COLOURS)
_FEATURE = _alt(FEATURE_PREDICATES)
_FEATURE_REL = _alt(RELATION_PHRASES[r] for r in FEATURE_RELATIONS)
# farmland's attributes are said of "the fields" ("fields" below), never "the farmland is ..."
_ATTRIBUTE_FEATURES = _alt(f for f in FEATURE_ATTRIBUTES if f != "farmland")
_SENTENCES = {
    "overview": re.compile(rf"(?P<opener>{_alt(OPENERS)}) (?P<art>an?) (?P<noun>{_alt(SCENE_NOUNS)})(?: with (?P<items>.+))?"),
    "breakdown": re.compile(r"there (?P<verb>is|are) (?P<items>.+)"),
    "feature one": re.compile(rf"(?P<art>an?) (?P<colour>{_COLOUR}) (?P<cat>{_CAT}) is (?P<rel>{_FEATURE_REL}) the (?P<feature>{_FEATURE})"),
    "feature all": re.compile(rf"the (?P<number>{_alt(_NUMBERS)}) (?P<plural>{_alt(_PLURALS)}) are (?P<rel>{_FEATURE_REL}) the (?P<feature>{_FEATURE})"),
    "feature several": re.compile(rf"several (?P<plural>{_alt(_PLURALS)}) are (?P<rel>{_FEATURE_REL}) the (?P<feature>{_FEATURE})"),
    "pair": re.compile(
        rf"(?P<art1>an?) (?P<colour1>{_COLOUR}) (?P<cat1>{_CAT}) is (?P<rel>{_alt(_OBJECT_PHRASES)}) "
        rf"(?P<art2>an?) (?P<colour2>{_COLOUR}) (?P<cat2>{_CAT})"
    ),
    "position": re.compile(
        rf"(?P<art>an?) (?P<size>{_alt(SIZE_WORDS)}) (?P<colour>{_COLOUR}) (?P<cat>{_CAT}) is (?P<region>{_alt(_PHRASE_TO_REGION)})"
    ),
    "fields": re.compile(r"the fields are (?P<items>.+)"),
    "feature attribute": re.compile(rf"the (?P<feature>{_ATTRIBUTE_FEATURES}) is (?P<items>.+)"),
}
_COUNTED = re.compile(
    rf"(?:(?P<art>an?)|(?P<number>{_alt(_NUMBERS)})) (?:(?P<colour>{_COLOUR}) )?(?P<noun>{_CAT}|{_alt(_PLURALS)})"
)


def _split_list(text: str) -> list[str] | None:
    """``"a, b and c"`` -> ``["a", "b", "c"]``; None when the separators are not the generator's."""
    head, sep, last = text.rpartition(" and ")
    items = [*head.split(", "), last] if sep else [text]
    return items if all(items) else None


def _counted_items(text: str, colour: bool) -> list[tuple[int, str, str | None]] | None:
    """``(count, category, colour)`` per item of a list of counted noun phrases, or None."""
    items = _split_list(text)
    if items is None:
        return None
    out = []
    for item in items:
        m = _COUNTED.fullmatch(item)
        if m is None or (m["colour"] is not None) != colour:
            return None
        if m["art"] is not None and m["noun"] in CATEGORIES:
            n, cat = 1, m["noun"]
        elif m["number"] is not None and m["noun"] in _PLURALS:
            n, cat = _NUMBERS[m["number"]], _PLURALS[m["noun"]]
        else:
            return None  # "two building", "a buildings"
        out.append((n, cat, m["colour"]))
    return out


def _colour_ok(category: str, colour: str) -> bool:
    return colour in CATEGORIES[category].colours


def _rebuild(kind: str, m: re.Match[str]) -> str | None:
    """The sentence body the generator writes for what ``m`` read, or None if it never writes such a thing."""
    g = m.groupdict()
    if kind == "overview":
        scene = f"{g['opener']} {article(g['noun'])} {g['noun']}"
        if g["items"] is None:
            return scene
        items = _counted_items(g["items"], colour=False)
        if not items or len(items) > MAX_OVERVIEW_ITEMS or len({c for _, c, _ in items}) != len(items):
            return None
        if items != sorted(items, key=lambda t: (-t[0], t[1])):
            return None
        return f"{scene} with {join_list([counted(n, c) for n, c, _ in items])}"
    if kind == "breakdown":
        items = _counted_items(g["items"], colour=True)
        if not items or len({c for _, c, _ in items}) != 1 or len({k for _, _, k in items}) != len(items):
            return None
        cat = items[0][1]
        if len(CATEGORIES[cat].colours) < 2 or not all(_colour_ok(cat, k) for _, _, k in items):
            return None
        if items != sorted(items, key=lambda t: (-t[0], t[2])):
            return None
        verb = "is" if items[0][0] == 1 else "are"
        return f"there {verb} {join_list([counted(n, c, k) for n, c, k in items])}"
    if kind.startswith("feature") and kind != "feature attribute":
        relation = _PHRASE_TO_RELATION[g["rel"]]
        if relation not in FEATURE_PREDICATES[g["feature"]]:
            return None
        tail = f"{g['rel']} the {g['feature']}"
        if kind == "feature one":
            if not _colour_ok(g["cat"], g["colour"]):
                return None
            np_ = noun_phrase(g["cat"], colour=g["colour"])
            return f"{article(np_)} {np_} is {tail}"
        if kind == "feature all":
            return f"the {g['number']} {g['plural']} are {tail}"
        return f"several {g['plural']} are {tail}"
    if kind == "pair":
        if not (_colour_ok(g["cat1"], g["colour1"]) and _colour_ok(g["cat2"], g["colour2"])):
            return None
        a, b = noun_phrase(g["cat1"], colour=g["colour1"]), noun_phrase(g["cat2"], colour=g["colour2"])
        return f"{article(a)} {a} is {g['rel']} {article(b)} {b}"
    if kind == "position":
        if not _colour_ok(g["cat"], g["colour"]):
            return None
        np_ = noun_phrase(g["cat"], colour=g["colour"], size=g["size"])
        return f"{article(np_)} {np_} is {g['region']}"
    feature = "farmland" if kind == "fields" else g["feature"]
    attrs = _split_list(g["items"])
    allowed = FEATURE_ATTRIBUTES[feature]
    if not attrs or any(a not in allowed for a in attrs) or attrs != sorted(set(attrs)):
        return None
    subject = "the fields are" if kind == "fields" else f"the {feature} is"
    return f"{subject} {join_list(attrs)}"


def caption_problem(caption: str) -> str | None:
    """Why ``caption`` is not a sentence of SynthRS's caption grammar, or None when it is one."""
    if not isinstance(caption, str) or len(caption) < 3:
        return "empty or not text"
    if not caption.endswith(".") or caption.count(".") != 1:
        return "not one sentence ending in a full stop"
    if not caption[0].isupper():
        return "does not start with a capital letter"
    body = caption[0].lower() + caption[1:-1]
    for kind, pattern in _SENTENCES.items():
        m = pattern.fullmatch(body)
        if m is not None and _rebuild(kind, m) == body:
            return None
    return "no sentence form of the grammar reads it (word order, agreement, vocabulary or list order)"


def is_well_formed(caption: str) -> bool:
    """True when ``caption`` is a sentence SynthRS's caption grammar can produce."""
    return caption_problem(caption) is None


def well_formed_share(captions: Sequence[str]) -> float:
    """The share of ``captions`` the grammar accepts.

    Raises:
        ValueError: no captions (a share of nothing is not 0).
    """
    if not captions:
        raise ValueError("well_formed_share: no captions to judge")
    return sum(map(is_well_formed, captions)) / len(captions)
