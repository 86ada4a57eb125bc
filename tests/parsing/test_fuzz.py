"""Random and adversarial inputs (seeded, bounded) never make the answer parsers or the prediction reader raise."""

from __future__ import annotations

import json
import random

from aerith.eval.runner import read_predictions
from aerith.parsing import FORMATS, match_class, parse_boxes
from aerith.parsing.boxes import auto_boxes

CASES = 1500
PIECES = [
    "[", "]", "[[", "]]", "(", ")", "{", "}", "<", ">", "|", ",", ";", " ", "\n", "\t", ".", "-", "+", "e", "E",
    "<box>", "</box>", "<bbox>", "</bbox>", "<ref>", "{<", ">}", "<p>", "NaN", "inf", "1e999", "0x1F", "１２", "٣",
    "0", "1", "7", "12", "999", "1000", "1001", "-5", "0.5", ".5", "5.", "1.0", "99999999999999999999999999999999",
    "\u0000", "\ud7ff", "\U0001f600", "é", "𝟙", "null", "true", "\\", '"', "'",
]


def _text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))
    if kind < 0.8:
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 60)))
    # long runs that stress backtracking: many numbers and separators, no closing bracket
    unit = rng.choice(["[1 ", "[1, 2, ", "<1><2>", "(1,2),", "1 " * 3, "[ ", "<box>(1,2)"])
    return unit * rng.randint(100, 2000)


def test_parse_boxes_reads_or_skips_anything():
    rng = random.Random(0)
    for i in range(CASES):
        text = _text(rng)
        size = (rng.randint(1, 5000), rng.randint(1, 5000))
        fmt = FORMATS[i % len(FORMATS)]
        boxes = parse_boxes(text, size, fmt=fmt)
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 <= x2 <= size[0] and 0 <= y1 <= y2 <= size[1], (text, fmt, boxes)
        assert len(auto_boxes(text)) == len(parse_boxes(text, size, fmt="auto"))
    assert parse_boxes(None, (5, 5)) == [] and auto_boxes(None) == []


def test_match_class_names_a_class_or_none():
    rng = random.Random(1)
    classes = ["airport", "bare_land", "BaseballField", "dense residential", "river"]
    for _ in range(CASES // 3):
        name, how = match_class(_text(rng)[:300], classes)
        assert name is None or name in classes


def _json_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**70, 1.5, float("nan")])
    if kind == 1:
        return _text(rng)[:80]
    if kind == 2:
        return rng.choice(["aid/test/0:x", "", "0", 7])
    if kind == 3:
        return {"id": rng.choice(["a", 3, None, True, ["x"], ""]), "answer": rng.choice(["x", 3, None, ["y"]])}
    if kind == 4:
        return {"id": "a", "prediction": _text(rng)[:40], "prompt": rng.choice([None, 1, "p"])}
    if kind == 5:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {str(k): _json_value(rng, depth + 1) for k in range(rng.randint(0, 3))}


def _file(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
    if kind < 0.45:
        return b"[" * rng.randint(1, 5000) + b"]" * rng.randint(0, 5000)  # deep nesting
    if kind < 0.6:
        return json.dumps([_json_value(rng) for _ in range(rng.randint(0, 6))]).encode()
    lines = [json.dumps(_json_value(rng)).encode() for _ in range(rng.randint(0, 8))]
    data = b"\n".join(lines)
    cut = rng.randint(0, len(data)) if rng.random() < 0.3 else len(data)
    return data[:cut] + rng.choice([b"", b"\n", b"\r\n", b"\n\n"])


def test_prediction_reader_counts_anything(tmp_path):
    rng = random.Random(2)
    path = tmp_path / "p.jsonl"
    for _ in range(CASES // 3):
        data = _file(rng)
        path.write_bytes(data)
        read = read_predictions(path)
        assert read.records >= len(read.answers)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in read.answers.items())
        assert read.valid_bytes <= len(data)
        for number, reason in read.bad_lines:
            assert number >= 1 and reason
