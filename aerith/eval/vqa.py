"""RSVQA-style VQA scoring: accuracy per question type, AA and OA, counts kept apart.

Answers (predictions and references alike) are normalised before comparison:
lower case; punctuation dropped except inside numbers (``1,000`` -> ``1000``,
``2.5`` kept); leading articles dropped; number words to digits (``three`` -> ``3``,
``twenty-one`` -> ``21``, ``a hundred`` -> ``100``); a yes/no synonym as the whole
answer or its first word becomes ``yes``/``no`` (``"Yes, there is."`` -> ``yes``,
``true``/``yep``/``correct`` -> ``yes``, ``false``/``nope`` -> ``no``), except in a
hedge (``no idea``, ``yes and no``, ``no and yes``). Adjacent number words that cannot
form one number stay apart (``three and four``, ``five six``).

Count and area questions are compared as numbers: the first number in each answer
(``"There are 3 buildings"`` -> 3; ``"1200m2"``, ``"1,200 m2"`` -> 1200; for count
questions ``no``/``none`` -> 0, also
``There are no buildings.``). Raw accuracy needs equal numbers; bucketed accuracy
needs the same bucket ``0``, ``1-10``, ``11-100``, ``101-1000``, ``>1000``. A
prediction without a number is wrong in both.

An answer that names a bucket instead of a number, as RSVQA's own answer classes do
(``between 10m2 and 100m2``, ``more than 1000m2``; also ``between 1 and 10``, ``0-10``,
``>1000``), is bucketed by the range it names (by its first number,
``between 10m2 and 100m2`` would fall a bucket low, into ``1-10``); it has no exact number,
so it is right in raw accuracy only when it reads as the reference does.

Papers disagree on which questions enter the averages, so all variants are reported:

| key | types averaged | count / area scored |
|---|---|---|
| ``AA``, ``OA`` | all, count and area included | raw (exact number) |
| ``AA_bucketed``, ``OA_bucketed`` | all | bucketed |
| ``AA_no_count``, ``OA_no_count`` | all but count types (area kept, raw) | raw |

``AA`` is the mean of per-type accuracies, ``OA`` the accuracy over all questions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

BUCKETS: tuple[str, ...] = ("0", "1-10", "11-100", "101-1000", ">1000")

_YES = frozenset({"yes", "yeah", "yep", "yup", "true", "correct", "affirmative"})
_NO = frozenset({"no", "nope", "false", "incorrect", "negative"})
# answers that start like yes or no and are neither
_HEDGES = (("no", "idea"), ("yes", "and", "no"), ("yes", "or", "no"), ("no", "and", "yes"), ("no", "or", "yes"))
_ARTICLES = frozenset({"a", "an", "the"})
_NONE = frozenset({"no", "none", "nothing"})
_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | frozenset(_SCALES)
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _tokens(text: str) -> list[str]:
    tokens = []
    for t in _TOKEN.findall(text.lower()):
        if t[0].isdigit():
            # a comma between digit groups is a thousands separator, a period a decimal point
            t = t.replace(",", "")
        tokens.append(t)
    return tokens


def _words_to_numbers(tokens: list[str]) -> list[str]:
    """Replace each run of number words with its digits (``twenty one`` -> ``21``)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        j = i
        # "a hundred", "a thousand"
        if tokens[i] == "a" and i + 1 < len(tokens) and tokens[i + 1] in _SCALES:
            j = i + 1
        if tokens[j] not in _NUMBER_WORDS:
            out.append(tokens[i])
            i += 1
            continue
        total = current = 0
        prev = None
        while j < len(tokens):
            t = tokens[j]
            # "and" inside a number only after a scale: "one hundred and five", not "three and four"
            if t == "and" and prev in _SCALES and j + 1 < len(tokens) and (tokens[j + 1] in _UNITS or tokens[j + 1] in _TENS):
                j += 1
                continue
            if t in _UNITS:
                if prev in _UNITS or (prev in _TENS and _UNITS[t] >= 10):
                    break  # "five six": two numbers
                current += _UNITS[t]
            elif t in _TENS:
                if prev in _UNITS or prev in _TENS:
                    break
                current += _TENS[t]
            elif t in _SCALES:
                if _SCALES[t] == 100:
                    current = max(current, 1) * 100
                else:
                    total += max(current, 1) * _SCALES[t]
                    current = 0
            else:
                break
            prev = t
            j += 1
        out.append(str(total + current))
        i = j
    return out


def _hedged(tokens: list[str]) -> bool:
    return any(tuple(tokens[: len(h)]) == h for h in _HEDGES)


def normalize_answer(answer: str) -> str:
    """The normalised form of a VQA answer (see the module docstring)."""
    tokens = _words_to_numbers(_tokens(answer))
    if tokens and (tokens[0] in _YES or tokens[0] in _NO) and not _hedged(tokens):
        return "yes" if tokens[0] in _YES else "no"
    while len(tokens) > 1 and tokens[0] in _ARTICLES:
        tokens = tokens[1:]
    return " ".join(tokens)


def parse_number(answer: str, *, none_is_zero: bool = False) -> float | None:
    """The first number in an answer (digits or number words), or ``None``.

    Args:
        answer: e.g. ``"3"``, ``"three"``, ``"1,200m2"``, ``"There are 12 cars."``.
        none_is_zero: read an answer without a number that starts with ``no``/``none``/
            ``nothing``, also after ``there is``/``there are``, as 0 (count questions:
            ``"No, there are none."``, ``"There are no buildings."``).
    """
    tokens = _words_to_numbers(_tokens(answer))
    for t in tokens:
        m = _NUMBER.match(t)
        if m:
            return float(m.group())
    if none_is_zero:
        if tokens[:2] in (["there", "are"], ["there", "is"], ["there", "s"]):
            tokens = tokens[2:]
        if tokens and tokens[0] in _NONE and not _hedged(tokens):
            return 0.0
    return None


# "between A and B" / "A-B" / "from A to B", and "more than N" / ">N", with optional m2 units
_UNIT_WORDS = frozenset({"m2", "m", "sqm", "square", "meters", "metres", "meter", "metre"})
_ABOVE = (("more", "than"), ("over",), ("above",), ("greater", "than"), ("larger", "than"), ("bigger", "than"))


def named_bucket(answer: str) -> str | None:
    """The bucket an answer names as a range rather than as a number, else ``None``.

    ``between 10m2 and 100m2`` (RSVQA's class for 11-100 m2) -> ``11-100``; ``between 1 and 10``,
    ``between 0m2 and 10m2`` -> ``1-10``; ``more than 1000m2``, ``>1000`` -> ``>1000``. A range
    that does not fall within one bucket (``between 5 and 50``) names none.
    """
    numbers = _words_to_numbers(_tokens(answer))
    words = [t for t in numbers if t not in _UNIT_WORDS]
    if words and words[0] in ("between", "from"):
        words = words[1:]
    if len(words) == 3 and words[1] in ("and", "to"):
        words = [words[0], words[2]]
    if len(words) == 2 and all(_NUMBER.fullmatch(w) for w in words) and _ranged(answer, words):
        low, high = float(words[0]), float(words[1])
        if low < high and bucket(math.nextafter(low, math.inf)) == bucket(high):
            return bucket(high)
        return None
    above = re.fullmatch(r"\s*>\s*(\d[\d,]*(?:\.\d+)?)\s*(?:m2|m²)?\s*\.?\s*", answer.lower())
    limit = float(above.group(1).replace(",", "")) if above else None
    for phrase in _ABOVE:
        if tuple(words[: len(phrase)]) == phrase and len(words) == len(phrase) + 1 and _NUMBER.fullmatch(words[-1]):
            limit = float(words[-1])
    if limit is not None and limit >= 1000:  # only the top bucket is open above
        return bucket(math.nextafter(limit, math.inf))
    return None


def _ranged(answer: str, numbers: list[str]) -> bool:
    """Two numbers read as a range: joined by between/from/and/to or a dash, not merely listed ("3 4")."""
    text = answer.lower()
    return bool(re.search(r"\b(?:between|from|to|and)\b", text)) or bool(re.search(r"\d\s*(?:m2)?\s*[-–]\s*\d", text))


def parse_quantity(answer: str, *, none_is_zero: bool = False) -> tuple[float | None, str | None]:
    """``(number, bucket)`` of a count or area answer.

    ``(n, bucket(n))`` for an answer with a number (:func:`parse_number`); ``(None, bucket)``
    for one that names a bucket (:func:`named_bucket`); ``(None, None)`` for neither.
    """
    named = named_bucket(answer)
    if named is not None:
        return None, named
    value = parse_number(answer, none_is_zero=none_is_zero)
    return value, (None if value is None else bucket(value))


def bucket(value: float) -> str:
    """The RSVQA bucket of a count or an area: ``0``, ``1-10``, ``11-100``, ``101-1000``, ``>1000``."""
    if value <= 0:
        return "0"
    for upper, name in ((10, "1-10"), (100, "11-100"), (1000, "101-1000")):
        if value <= upper:
            return name
    return ">1000"


def vqa_scores(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    types: Sequence[str],
    *,
    count_types: Sequence[str] = ("count",),
    area_types: Sequence[str] = ("area",),
) -> dict[str, Any]:
    """Accuracy per question type, AA and OA, with counts and areas also bucketed.

    Args:
        predictions: one answer per question.
        references: the accepted answer per question, or a sequence of accepted answers
            (the prediction is right if it matches any).
        types: the question type per question (``presence``, ``comp``, ``count`` ...).
        count_types: types scored as counts.
        area_types: types scored as areas (``"<N>m2"`` answers).

    Returns:
        ``AA``, ``OA``, ``AA_bucketed``, ``OA_bucketed``, ``AA_no_count``, ``OA_no_count``
        (see the module docstring; ``None`` where no question qualifies);
        ``per_type``: ``{type: {"accuracy", "n"}}``, count/area types also with
        ``accuracy_bucketed``, ``per_bucket`` (``{bucket: raw accuracy}`` of the questions
        whose reference falls in that bucket), ``unparsed`` (predictions with neither a number nor
        a named bucket) and ``unparsed_references`` (references with neither, compared as text instead);
        ``n``.

    Raises:
        ValueError: lengths differ or there are no questions.
    """
    if not (len(predictions) == len(references) == len(types)):
        raise ValueError(
            "predictions, references and types differ in length: "
            f"{len(predictions)}, {len(references)}, {len(types)}"
        )
    if not predictions:
        raise ValueError("no predictions to score")
    numeric = set(count_types) | set(area_types)
    raw: dict[str, list[bool]] = {}
    bucketed: dict[str, list[bool]] = {}
    per_bucket: dict[str, dict[str, list[bool]]] = {}
    unparsed: dict[str, int] = {}
    unparsed_refs: dict[str, int] = {}
    for pred, refs, qtype in zip(predictions, references, types, strict=True):
        accepted = [refs] if isinstance(refs, str) else list(refs)
        if qtype in numeric:
            is_count = qtype in count_types
            value, value_bucket = parse_quantity(pred, none_is_zero=is_count)
            targets = [q for r in accepted if (q := parse_quantity(r, none_is_zero=is_count))[1] is not None]
            unparsed[qtype] = unparsed.get(qtype, 0) + (value_bucket is None)
            same_text = any(normalize_answer(pred) == normalize_answer(r) for r in accepted)
            if targets:
                # a named bucket has no exact number: right in raw accuracy only as the reference's own text
                ok_raw = value in {v for v, _ in targets} if value is not None else (value_bucket is not None and same_text)
                ok_bucket = value_bucket is not None and value_bucket in {b for _, b in targets}
            else:  # a reference without a number ("many"): compared as text, and counted
                unparsed_refs[qtype] = unparsed_refs.get(qtype, 0) + 1
                ok_raw = ok_bucket = same_text
            bucketed.setdefault(qtype, []).append(ok_bucket)
            ref_bucket = targets[0][1] if targets else "unparsed reference"
            per_bucket.setdefault(qtype, {}).setdefault(ref_bucket, []).append(ok_raw)
        else:
            norm = normalize_answer(pred)
            ok_raw = any(norm == normalize_answer(r) for r in accepted)
            bucketed.setdefault(qtype, []).append(ok_raw)
        raw.setdefault(qtype, []).append(ok_raw)

    per_type: dict[str, dict[str, Any]] = {}
    for qtype, oks in raw.items():
        entry: dict[str, Any] = {"accuracy": _mean(oks), "n": len(oks)}
        if qtype in numeric:
            entry["accuracy_bucketed"] = _mean(bucketed[qtype])
            buckets = sorted(per_bucket[qtype].items(), key=_bucket_order)
            entry["per_bucket"] = {b: _mean(v) for b, v in buckets}
            entry["unparsed"] = unparsed[qtype]
            entry["unparsed_references"] = unparsed_refs.get(qtype, 0)
        per_type[qtype] = entry
    kept = [t for t in raw if t not in count_types]
    return {
        "AA": _average(raw, list(raw)),
        "OA": _overall(raw, list(raw)),
        "AA_bucketed": _average(bucketed, list(raw)),
        "OA_bucketed": _overall(bucketed, list(raw)),
        "AA_no_count": _average(raw, kept),
        "OA_no_count": _overall(raw, kept),
        "per_type": per_type,
        "n": len(predictions),
    }


def _mean(oks: Sequence[bool]) -> float:
    return sum(oks) / len(oks)


def _average(results: dict[str, list[bool]], keys: list[str]) -> float | None:
    return sum(_mean(results[k]) for k in keys) / len(keys) if keys else None


def _overall(results: dict[str, list[bool]], keys: list[str]) -> float | None:
    oks = [ok for k in keys for ok in results[k]]
    return _mean(oks) if oks else None


def _bucket_order(item: tuple[str, Any]) -> int:
    return BUCKETS.index(item[0]) if item[0] in BUCKETS else len(BUCKETS)
