"""Map free-text answers to class names (scene classification).

An answer is matched to a class in three steps, the first that succeeds wins:

1. ``exact``: equal after normalisation: lower case, ``_``/``-`` and spaces removed,
   camel case ignored (``BaseballField`` = ``baseball field``), punctuation (a trailing
   period, quotes) dropped, leading articles (``a``, ``an``, ``the``) dropped.
2. ``contained``: a run of consecutive answer words spells a class name (up to an
   English plural ending), e.g. ``"This is a dense residential area."`` -> ``dense_residential``.
   A class found inside the span of a longer one is ignored (``residential`` inside
   ``dense residential``), and so is one a negation precedes within three words
   (``"It is not a forest but a river."`` -> ``river``; ``"Not a forest."`` matches no
   class: ``negated``); if distinct classes remain the answer is ``ambiguous``.
3. ``fuzzy``: the class whose normalised name has the highest ``difflib`` similarity
   ratio with the normalised answer, if that ratio is at least ``FUZZY_CUTOFF``
   (typos, plurals, ``harbour`` -> ``harbor``); ties go to the earlier class.

Otherwise the answer matches no class (``none``, ``negated`` or ``ambiguous``) and counts as wrong.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FUZZY_CUTOFF = 0.85
MATCH_KINDS: tuple[str, ...] = ("exact", "contained", "fuzzy", "ambiguous", "negated", "none")
_NEGATORS = frozenset({"not", "no", "never", "nor", "neither", "t"})  # "t": isn't, aren't
_NEGATION_REACH = 3  # words after a negation that it covers, within its clause
_NOT_NEGATING = frozenset({"sure", "doubt"})  # "not sure, a forest", "no doubt a forest"
_TOKEN = re.compile(r"[^\W_]+|[.,;:!?]")

_ARTICLES = ("a", "an", "the")
_MAX_CLASS_WORDS = 6
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    """Lower-case words of ``text``, camel case split, punctuation, ``_`` and ``-`` as separators."""
    return _WORD.findall(_CAMEL.sub(" ", text).lower())


def _words_and_negation(text: str) -> tuple[list[str], list[bool]]:
    """The words of ``text`` and, per word, whether a negation covers it: up to three words after
    the negation, ended by punctuation or "but" ("Not a river. Forest.", "not a river but a beach")."""
    tokens = _TOKEN.findall(_CAMEL.sub(" ", text).lower())
    words: list[str] = []
    denied: list[bool] = []
    reach = 0
    for i, token in enumerate(tokens):
        if not token[0].isalnum() or token == "but":
            reach = 0
            if token == "but":
                words.append(token)
                denied.append(False)
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        words.append(token)
        denied.append(reach > 0)
        reach = max(0, reach - 1)
        if token in _NEGATORS and following not in _NOT_NEGATING:
            reach = _NEGATION_REACH
    return words, denied


def _key(text: str) -> str:
    """The normalised form used for exact matching."""
    words = _words(text)  # punctuation (trailing period, quotes) is a separator, hence dropped
    while len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return "".join(words)


def _singular(key: str) -> str:
    """Drop an English plural ending from a normalised key (applied to answers and classes alike)."""
    if len(key) <= 3 or not key.endswith("s"):
        return key
    if key.endswith("ies"):
        return key[:-3] + "y"
    if key.endswith(("ches", "shes", "xes", "sses")):
        return key[:-2]
    return key[:-1]


@dataclass(frozen=True)
class ClassIndex:
    classes: tuple[str, ...]
    keys: tuple[str, ...]
    by_key: dict[str, int]
    by_singular: dict[str, int]

    @classmethod
    def build(cls, classes: Sequence[str]) -> ClassIndex:
        if not classes:
            raise ValueError("classes must not be empty")
        keys = tuple(_key(c) for c in classes)
        by_key: dict[str, int] = {}
        for i, k in enumerate(keys):
            if not k:
                raise ValueError(f"class name {classes[i]!r} has no letters or digits")
            if k in by_key:
                raise ValueError(
                    f"class names {classes[by_key[k]]!r} and {classes[i]!r} are the same after normalisation"
                )
            by_key[k] = i
        by_singular: dict[str, int] = {}
        for i, k in enumerate(keys):
            by_singular.setdefault(_singular(k), i)
        return cls(tuple(classes), keys, by_key, by_singular)

    def index_of(self, name: str) -> int | None:
        """Position of the class spelled ``name`` (after normalisation), else ``None``."""
        return self.by_key.get(_key(name))

    def match(self, answer: str) -> tuple[int | None, str]:
        key = _key(answer)
        if key in self.by_key:
            return self.by_key[key], "exact"
        found, negated = self._contained(*_words_and_negation(answer))
        if len(found) == 1:
            return found.pop(), "contained"
        if len(found) > 1:
            return None, "ambiguous"
        if negated:
            return None, "negated"
        return self._fuzzy(key)

    def _contained(self, words: list[str], denied: list[bool]) -> tuple[set[int], set[int]]:
        """The classes the words name, and those they name only under a negation (``denied`` per word)."""
        spans: list[tuple[int, int, int]] = []
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + _MAX_CLASS_WORDS) + 1):
                idx = self.by_singular.get(_singular("".join(words[i:j])))
                if idx is not None:
                    spans.append((i, j, idx))
        kept = [(i, idx) for i, j, idx in spans if not any(a <= i and j <= b and (b - a) > (j - i) for a, b, _ in spans)]
        negated = {idx for i, idx in kept if denied[i]}
        return {idx for _, idx in kept} - negated, negated

    def _fuzzy(self, key: str) -> tuple[int | None, str]:
        if not key:
            return None, "none"
        best, best_ratio = None, FUZZY_CUTOFF
        for i, k in enumerate(self.keys):
            ratio = difflib.SequenceMatcher(None, key, k, autojunk=False).ratio()
            if ratio > best_ratio or (ratio == best_ratio and best is None):
                best, best_ratio = i, ratio
        return (best, "fuzzy") if best is not None else (None, "none")


def match_class(answer: str, classes: Sequence[str]) -> tuple[str | None, str]:
    """The class an answer names, and how it was found.

    Args:
        answer: the model's free-text answer.
        classes: the class names, as the dataset spells them.

    Returns:
        ``(class name or None, how)`` with ``how`` one of ``MATCH_KINDS``.
    """
    index = ClassIndex.build(classes)
    i, how = index.match(answer)
    return (index.classes[i] if i is not None else None), how


__all__ = ["FUZZY_CUTOFF", "MATCH_KINDS", "ClassIndex", "match_class"]
