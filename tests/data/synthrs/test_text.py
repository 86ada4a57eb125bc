"""Captions, answers and referring expressions agree with the scene graphs.

The text is read back with this file's own small regex readers and checked
against the objects and relations recorded in ``scene_graphs.json``; only the
vocabulary (category and colour names) is taken from the package.
"""

import re

from aerith.data.synthrs import CATEGORIES, COLOURS, SceneGraph, truth_tuples
from aerith.eval.scene_graph import parse

NUMBERS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
FEATURES = ("road", "river", "water", "sea", "runway", "apron", "forest", "parking lot")
URBAN = {"dense residential", "industrial", "harbor", "airport", "parking lot"}


def read_np(text: str) -> tuple[str, str | None, str | None, bool]:
    """``"large white storage tanks"`` -> (category, colour, size, plural)."""
    for cat, spec in CATEGORIES.items():
        for noun, plural in ((spec.plural, True), (cat, False)):
            if text == noun or text.endswith(" " + noun):
                words = text[: len(text) - len(noun)].split()
                size = words.pop(0) if words and words[0] in ("small", "large") else None
                colour = words.pop(0) if words and words[0] in COLOURS else None
                assert not words, f"unread words {words} in {text!r}"
                return cat, colour, size, plural
    raise AssertionError(f"no category in {text!r}")


def region(box, size) -> str:
    col = min(2, int(3 * (box[0] + box[2]) / 2 / size))
    row = min(2, int(3 * (box[1] + box[3]) / 2 / size))
    return [["top left", "top", "top right"], ["left", "center", "right"], ["bottom left", "bottom", "bottom right"]][row][col]


def related(scene: dict, a: int, relation: str, other) -> bool:
    rels = {(r["subject"], r["predicate"], r["object"]) for r in scene["relations"]}
    if relation == "next to":
        return (a, "next to", other) in rels or (other, "next to", a) in rels
    if relation == "right of":
        return (other, "left of", a) in rels
    return (a, relation, other) in rels


def count(scene: dict, cat: str, colour: str | None = None) -> int:
    return sum(o["category"] == cat and (colour is None or o["colour"] == colour) for o in scene["objects"])


# -- questions -----------------------------------------------------------------


PRESENCE = re.compile(
    r"^(?:Is there an? (?P<a>.+?)|Are there (?P<b>.+?)|Is an? (?P<c>.+?) present)(?: (?P<rel>on|in|along) the (?P<feat>[a-z ]+))?\?$"
)
COUNT = re.compile(r"^(?:How many (?P<a>.+) are there|What is the number of (?P<b>.+)|How many (?P<c>.+) are in the image)\?$")
MORE = re.compile(r"^Are there (?P<form>more|fewer) (?P<a>.+) than (?P<b>.+)\?$")
EQUAL = re.compile(r"^Is the number of (?P<a>.+) equal to the number of (?P<b>.+)\?$")


def expected_answer(scene: dict, q: dict) -> str:
    text = q["question"]
    if q["type"] == "rural_urban":
        assert text == "Is it a rural or an urban area?"
        return "urban" if scene["class"] in URBAN else "rural"
    if q["type"] == "count":
        m = COUNT.match(text)
        cat, colour, _, plural = read_np(m["a"] or m["b"] or m["c"])
        assert plural
        return str(count(scene, cat, colour))
    if q["type"] == "presence":
        m = PRESENCE.match(text)
        cat, colour, _, _ = read_np(m["a"] or m["b"] or m["c"])
        hits = [o for o in scene["objects"] if o["category"] == cat and colour in (None, o["colour"])]
        if m["rel"]:
            assert m["feat"] in FEATURES
            hits = [o for o in hits if related(scene, o["id"], m["rel"], m["feat"])]
        return "yes" if hits else "no"
    assert q["type"] == "comp"
    m = MORE.match(text) or EQUAL.match(text)
    a, _, _, _ = read_np(m["a"])
    b, _, _, _ = read_np(m["b"])
    na, nb = count(scene, a), count(scene, b)
    form = m.groupdict().get("form") or "equal"
    return "yes" if {"more": na > nb, "fewer": na < nb, "equal": na == nb}[form] else "no"


def test_every_answer_agrees_with_the_scene_graph(scenes):
    types = set()
    for scene in scenes:
        assert len({q["question"] for q in scene["questions"]}) == len(scene["questions"])
        for q in scene["questions"]:
            assert q["answer"] == expected_answer(scene, q), (scene["id"], q)
            types.add(q["type"])
    assert types == {"presence", "comp", "count", "rural_urban"}


def test_answers_are_not_trivially_constant(scenes):
    presence = [q["answer"] for s in scenes for q in s["questions"] if q["type"] == "presence"]
    comp = [q["answer"] for s in scenes for q in s["questions"] if q["type"] == "comp"]
    counts = {q["answer"] for s in scenes for q in s["questions"] if q["type"] == "count"}
    assert 0.35 < presence.count("yes") / len(presence) < 0.65
    assert 0.3 < comp.count("yes") / len(comp) < 0.7
    assert {"0", "1", "2", "3", "4"} <= counts and all(int(c) <= 8 for c in counts)


# -- captions ------------------------------------------------------------------

NUMBER_PHRASE = re.compile(
    r"\b(" + "|".join(list(NUMBERS)[2:]) + r") ((?:(?:" + "|".join(COLOURS) + r") )?(?:"
    + "|".join(sorted((c.plural for c in CATEGORIES.values()), key=len, reverse=True)) + r"))\b"
)


def test_captions_state_only_what_is_true(scenes):
    for scene in scenes:
        caps = scene["captions"]
        assert len(caps) == 5 and len(set(caps)) == 5
        truth = truth_tuples(SceneGraph.from_dict(scene))
        for cap in caps:
            assert cap[0].isupper() and cap.endswith(".") and cap.count(".") == 1, cap
            for number, phrase in NUMBER_PHRASE.findall(cap.lower()):
                cat, colour, _, _ = read_np(phrase)
                assert count(scene, cat, colour) == NUMBERS[number], (scene["id"], cap)
            # what the project's scene-graph parser reads in the caption is true of the scene
            extra = parse(cap).tuples() - truth
            assert not extra, (scene["id"], cap, extra)
            for cat in CATEGORIES:
                if re.search(rf"\b{cat}s?\b", cap.lower()):  # every category a caption names is there
                    assert count(scene, cat) > 0, (scene["id"], cap)


def test_captions_parse_into_the_ground_truth_objects(scenes):
    """SG-F1's parser finds the scene's categories in the captions (recall, not only precision)."""
    for scene in scenes:
        present = {o["category"] for o in scene["objects"]}
        found = set().union(*(parse(c).objects for c in scene["captions"]))
        assert present <= found or len(present) > 3, (scene["id"], present - found)


# -- referring expressions -------------------------------------------------------

REGIONS = "|".join(
    ("at the top left", "at the top right", "at the top", "on the left", "in the center", "on the right",
     "at the bottom left", "at the bottom right", "at the bottom")
)  # fmt: skip
EXPRESSION = re.compile(
    rf"^the (?P<np>[a-z ]+?)(?: (?P<region>{REGIONS}))?"
    r"(?: (?P<rel>next to|to the left of|to the right of|in|on|along|surrounded by) (?P<other>the [a-z ]+))?$"
)
RELATION_WORDS = {"to the left of": "left of", "to the right of": "right of"}


def resolve(scene: dict, text: str) -> list[int]:
    """Ids of the objects an expression describes, read from its text alone."""
    m = EXPRESSION.match(text)
    assert m, text
    cat, colour, size, plural = read_np(m["np"])
    assert not plural
    ids = [
        o["id"]
        for o in scene["objects"]
        if o["category"] == cat and colour in (None, o["colour"]) and size in (None, o["size"])
    ]
    if m["region"]:
        name = m["region"].split(" the ", 1)[1]
        ids = [i for i in ids if region(scene["objects"][i]["box"], scene["size"]) == name]
    if m["rel"]:
        relation = RELATION_WORDS.get(m["rel"], m["rel"])
        other_text = m["other"][4:]
        if other_text in FEATURES:
            other = other_text
        else:
            refs = resolve(scene, m["other"])
            assert len(refs) == 1, f"{m['other']!r} names {len(refs)} objects"
            other = refs[0]
        ids = [i for i in ids if i != other and related(scene, i, relation, other)]
    return ids


def test_every_referring_expression_matches_exactly_its_object(scenes):
    n = 0
    kinds = set()
    for scene in scenes:
        for expr in scene["expressions"]:
            assert resolve(scene, expr["text"]) == [expr["object"]], (scene["id"], expr)
            assert expr["box"] == scene["objects"][expr["object"]]["box"]
            m = EXPRESSION.match(expr["text"])
            kinds.add("region" if m["region"] else "relation" if m["rel"] else "attributes")
            n += 1
    assert n >= len(scenes) * 2
    assert kinds == {"region", "relation", "attributes"}


def test_expressions_target_different_objects(scenes):
    described = 0
    for scene in scenes:
        targets = [e["object"] for e in scene["expressions"]]
        assert len(targets) == len(set(targets)) and len(targets) <= 3
        described += bool(targets) or not scene["objects"]
    assert described >= 0.97 * len(scenes)  # an object may lack a unique description; a scene rarely does
