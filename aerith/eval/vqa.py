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
questions ``no``/``none`` -> 0). Raw accuracy needs equal numbers; bucketed accuracy
needs the same bucket ``0``, ``1-10``, ``11-100``, ``101-1000``, ``>1000``. A
prediction without a number is wrong in both.

Papers disagree on which questions enter the averages, so all variants are reported:

| key | types averaged | count / area scored |
|---|---|---|
| ``AA``, ``OA`` | all, count and area included | raw (exact number) |
| ``AA_bucketed``, ``OA_bucketed`` | all | bucketed |
| ``AA_no_count``, ``OA_no_count`` | all but count types (area kept, raw) | raw |

``AA`` is the mean of per-type accuracies, ``OA`` the accuracy over all questions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

BUCKETS: tuple[str, ...] = ("0", "1-10", "11-100", "101-1000", ">1000")

_YES = frozenset({"yes", "yeah", "yep", "yup", "true", "correct", "affirmative"})
_NO = frozenset({"no", "nope", "false", "incorrect", "negative"})
# answers that start like yes or no and are neither
_HEDGES = (("no", "idea"), ("yes", "and", "no"), ("yes", "or", "no"), ("no", "and", "yes"), ("no", "or", "yes"))
_ARTICLES = frozenset({"a", "an", "the"})
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
            ``nothing`` as 0 (count questions: ``"No, there are none."``).
    """
    tokens = _words_to_numbers(_tokens(answer))
    for t in tokens:
        m = _NUMBER.match(t)
        if m:
            return float(m.group())
    if none_is_zero and tokens and tokens[0] in {"no", "none", "nothing"} and not _hedged(tokens):
        return 0.0
    return None


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
        whose reference falls in that bucket), ``unparsed`` (predictions without a number) and
        ``unparsed_references`` (references without a number, compared as text instead);
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
            value = parse_number(pred, none_is_zero=is_count)
            targets = [v for r in accepted if (v := parse_number(r, none_is_zero=is_count)) is not None]
            unparsed[qtype] = unparsed.get(qtype, 0) + (value is None)
            if targets:
                ok_raw = value is not None and value in targets
                ok_bucket = value is not None and bucket(value) in {bucket(t) for t in targets}
            else:  # a reference without a number ("many"): compared as text, and counted
                unparsed_refs[qtype] = unparsed_refs.get(qtype, 0) + 1
                ok_raw = ok_bucket = any(normalize_answer(pred) == normalize_answer(r) for r in accepted)
            bucketed.setdefault(qtype, []).append(ok_bucket)
            ref_bucket = bucket(targets[0]) if targets else "unparsed reference"
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
