"""Text from a scene graph: captions, RSVQA-style questions and unique referring expressions.

Everything here is computed from a :class:`~aerith.data.synthrs.scene.SceneGraph`
and says only what the graph makes true:

- **Captions** (five per image, one sentence each, all different): an overview
  with counts, colour breakdowns, relations to land cover and between objects,
  positions, and attributes of the land cover. Their words are those of
  :mod:`aerith.eval.scene_graph`, whose rule parser reads them back into tuples
  that :func:`truth_tuples` contains (the tests check this).
- **Questions** of the RSVQA-LR types ``presence``, ``comp``, ``count`` and
  ``rural_urban``, with answers ``yes``/``no``, an integer, ``rural``/``urban``.
  Presence answers are balanced between yes and no.
- **Referring expressions**: a :class:`Query` (category, colour, size, region,
  relation) is turned into text only when exactly one object matches it; a
  relation to another object names that object by a description that is
  itself unique.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from aerith.data.synthrs.scene import CATEGORIES, FEATURE_PREDICATES, Relation, SceneGraph, SceneObject

NUMBER_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip

REGION_PHRASES: Mapping[str, str] = MappingProxyType(
    {
        "top left": "at the top left",
        "top": "at the top",
        "top right": "at the top right",
        "left": "on the left",
        "center": "in the center",
        "right": "on the right",
        "bottom left": "at the bottom left",
        "bottom": "at the bottom",
        "bottom right": "at the bottom right",
    }
)
RELATION_PHRASES: Mapping[str, str] = MappingProxyType(
    {
        "next to": "next to",
        "left of": "to the left of",
        "right of": "to the right of",
        "in": "in",
        "on": "on",
        "along": "along",
        "surrounded by": "surrounded by",
    }
)
QUESTION_TYPES: tuple[str, ...] = ("presence", "comp", "count", "rural_urban")
QUESTIONS_PER_TYPE: Mapping[str, int] = MappingProxyType({"presence": 2, "comp": 1, "count": 2, "rural_urban": 1})
N_CAPTIONS = 5


# -- noun phrases ------------------------------------------------------------------


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(category: str, *, colour: str | None = None, size: str | None = None, plural: bool = False) -> str:
    """``"large white storage tanks"``: size, colour, then the category (plural when asked)."""
    noun = CATEGORIES[category].plural if plural else category
    return " ".join(w for w in (size, colour, noun) if w)


def counted(n: int, category: str, colour: str | None = None) -> str:
    """``"a red building"``, ``"three red buildings"``."""
    if n == 1:
        phrase = noun_phrase(category, colour=colour)
        return f"{article(phrase)} {phrase}"
    return f"{NUMBER_WORDS[n]} {noun_phrase(category, colour=colour, plural=True)}"


def join_list(items: Sequence[str]) -> str:
    """``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


# -- referring expressions ---------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A description of objects: every field set must hold.

    Attributes:
        category: object category.
        colour, size, region: attribute filters (``None``: any).
        relation: a key of :data:`RELATION_PHRASES`, or ``None``.
        other: what the relation points to: a feature name, or a :class:`Query`
            that must match exactly one object.
    """

    category: str
    colour: str | None = None
    size: str | None = None
    region: str | None = None
    relation: str | None = None
    other: Query | str | None = None

    def text(self) -> str:
        """``"the large red building at the top left"``, ``"the ship next to the white storage tank"``."""
        words = f"the {noun_phrase(self.category, colour=self.colour, size=self.size)}"
        if self.region is not None:
            words += f" {REGION_PHRASES[self.region]}"
        if self.relation is not None:
            target = self.other.text() if isinstance(self.other, Query) else f"the {self.other}"
            words += f" {RELATION_PHRASES[self.relation]} {target}"
        return words

    @property
    def level(self) -> int:
        """How much the description says: 1 for the bare category, more per filter."""
        filters = sum(v is not None for v in (self.colour, self.size, self.region))
        return 1 + filters + (2 if self.relation is not None else 0)


def matches(query: Query, graph: SceneGraph) -> list[int]:
    """Ids of the objects of ``graph`` that ``query`` describes."""
    ref: int | str | None = None
    if isinstance(query.other, Query):
        refs = matches(query.other, graph)
        if len(refs) != 1:
            return []  # "the X" must name one object
        ref = refs[0]
    elif query.other is not None:
        ref = query.other
    out = []
    for obj in graph.objects:
        if obj.category != query.category:
            continue
        if query.colour is not None and obj.colour != query.colour:
            continue
        if query.size is not None and obj.size != query.size:
            continue
        if query.region is not None and graph.region(obj) != query.region:
            continue
        if query.relation is not None and (ref is None or ref == obj.id or not graph.related(obj.id, query.relation, ref)):
            continue
        out.append(obj.id)
    return out


def _relations_of(obj: SceneObject, graph: SceneGraph) -> list[tuple[str, int | str]]:
    """``(relation, other)`` pairs that hold for ``obj``, in text form (``right of`` included)."""
    out: list[tuple[str, int | str]] = []
    for rel in graph.relations:
        if rel.subject == obj.id:
            out.append((rel.predicate, rel.object))
        elif rel.object == obj.id and rel.predicate == "next to":
            out.append(("next to", rel.subject))
        elif rel.object == obj.id and rel.predicate == "left of":
            out.append(("right of", rel.subject))
    return out


def _simple_name(obj: SceneObject, graph: SceneGraph) -> Query | None:
    for q in (Query(obj.category), Query(obj.category, colour=obj.colour)):
        if matches(q, graph) == [obj.id]:
            return q
    return None


def candidate_queries(obj: SceneObject, graph: SceneGraph) -> list[Query]:
    """Every description of ``obj`` this module can say, unique or not, simplest first.

    Attribute descriptions combine colour (for categories of several colours),
    size word and region; relational ones name a feature, or another object by
    a description unique on its own, with or without the colour and size.
    """
    cat = obj.category
    colours = (None, obj.colour) if len(CATEGORIES[cat].colours) > 1 else (None,)
    out = [
        Query(cat, colour=c, size=s, region=r)
        for r in (None, graph.region(obj))
        for s in (None, obj.size)
        for c in colours
    ]
    for relation, other in _relations_of(obj, graph):
        if isinstance(other, int):
            ref = _simple_name(graph.objects[other], graph)
            if ref is None:
                continue
            target: Query | str = ref
        else:
            target = other
        out += [Query(cat, colour=c, size=s, relation=relation, other=target) for s in (None, obj.size) for c in colours]
    return sorted(out, key=lambda q: q.level)


def referring_expressions(graph: SceneGraph, rng: np.random.Generator, limit: int = 3) -> list[tuple[int, Query]]:
    """Up to ``limit`` ``(object id, query)`` pairs, each query matching exactly that object.

    Objects of categories not yet described are preferred; among an object's
    unique descriptions simpler ones are likelier (weight halves per level).
    """
    remaining = [graph.objects[i] for i in rng.permutation(len(graph.objects))]
    chosen: list[tuple[int, Query]] = []
    while remaining and len(chosen) < limit:
        described = {graph.objects[i].category for i, _ in chosen}
        obj = next((o for o in remaining if o.category not in described), remaining[0])
        remaining.remove(obj)
        unique = [q for q in candidate_queries(obj, graph) if matches(q, graph) == [obj.id]]
        if not unique:
            continue
        base = unique[0].level
        weights = np.array([0.5 ** (q.level - base) for q in unique])
        chosen.append((obj.id, unique[int(rng.choice(len(unique), p=weights / weights.sum()))]))
    return chosen


# -- questions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One VQA item: ``type`` is an RSVQA-LR type."""

    type: str
    question: str
    answer: str


def _presence(graph: SceneGraph, rng: np.random.Generator) -> Question:
    options: dict[bool, list[tuple[str, str | None, str | None, str | None]]] = {True: [], False: []}
    for cat in graph.askable:
        for colour in (None, *CATEGORIES[cat].colours):
            if colour is not None and len(CATEGORIES[cat].colours) == 1:
                continue
            options[graph.count(cat, colour) > 0].append((cat, colour, None, None))
    for feature in graph.features:
        for cat in graph.askable:
            for relation in FEATURE_PREDICATES.get(feature, ()):
                if relation == "surrounded by":
                    continue
                hit = any(graph.related(o.id, relation, feature) for o in graph.objects if o.category == cat)
                if hit or rng.random() < 0.1:  # a few "no" items about features, most are trivially no
                    options[hit].append((cat, None, relation, feature))
    want = bool(rng.random() < 0.5) if options[True] and options[False] else bool(options[True])
    cat, colour, relation, feature = options[want][int(rng.integers(len(options[want])))]
    tail = f" {RELATION_PHRASES[relation]} the {feature}" if relation else ""
    singular = noun_phrase(cat, colour=colour)
    plural = noun_phrase(cat, colour=colour, plural=True)
    forms = [f"Is there {article(singular)} {singular}{tail}?", f"Are there {plural}{tail}?"]
    if not tail:
        forms.append(f"Is {article(singular)} {singular} present?")
    return Question("presence", forms[int(rng.integers(len(forms)))], "yes" if want else "no")


def _count(graph: SceneGraph, rng: np.random.Generator) -> Question:
    present = [c for c in graph.askable if graph.count(c)]
    absent = [c for c in graph.askable if not graph.count(c)]
    pool = present if present and (not absent or rng.random() < 0.85) else absent
    cat = pool[int(rng.integers(len(pool)))]
    colour = None
    colours = sorted({o.colour for o in graph.objects if o.category == cat})
    if colours and len(CATEGORIES[cat].colours) > 1 and rng.random() < 0.4:
        colour = colours[int(rng.integers(len(colours)))]
    plural = noun_phrase(cat, colour=colour, plural=True)
    forms = (f"How many {plural} are there?", f"What is the number of {plural}?", f"How many {plural} are in the image?")
    return Question("count", forms[int(rng.integers(len(forms)))], str(graph.count(cat, colour)))


def _comparison(graph: SceneGraph, rng: np.random.Generator) -> Question:
    options: dict[bool, list[tuple[str, str, str]]] = {True: [], False: []}
    for a in graph.askable:
        for b in graph.askable:
            na, nb = graph.count(a), graph.count(b)
            if a == b or na == nb == 0:  # two absent categories make a dull question
                continue
            options[na > nb].append(("more", a, b))
            options[na < nb].append(("fewer", a, b))
            if a < b:
                options[na == nb].append(("equal", a, b))
    if not options[True] and not options[False]:  # a scene without objects
        options[False].append(("more", graph.askable[0], graph.askable[1]))
    want = bool(rng.random() < 0.5) if options[True] and options[False] else bool(options[True])
    form, a, b = options[want][int(rng.integers(len(options[want])))]
    pa, pb = CATEGORIES[a].plural, CATEGORIES[b].plural
    text = {
        "more": f"Are there more {pa} than {pb}?",
        "fewer": f"Are there fewer {pa} than {pb}?",
        "equal": f"Is the number of {pa} equal to the number of {pb}?",
    }[form]
    return Question("comp", text, "yes" if want else "no")


def questions(graph: SceneGraph, rng: np.random.Generator) -> list[Question]:
    """The scene's questions: :data:`QUESTIONS_PER_TYPE` of each type, without repeats."""
    out: list[Question] = []
    makers = {"presence": _presence, "comp": _comparison, "count": _count}
    for qtype in QUESTION_TYPES:
        if qtype == "rural_urban":
            out.append(Question("rural_urban", "Is it a rural or an urban area?", graph.rural_urban))
            continue
        asked = {q.question for q in out}
        for _ in range(QUESTIONS_PER_TYPE[qtype]):
            for _attempt in range(10):
                q = makers[qtype](graph, rng)
                if q.question not in asked:
                    out.append(q)
                    asked.add(q.question)
                    break
    return out


# -- captions ----------------------------------------------------------------------


def _overview(graph: SceneGraph, opener: str) -> str:
    counts = Counter(o.category for o in graph.objects)
    items = [counted(n, cat) for cat, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    scene = f"{opener} {article(graph.noun)} {graph.noun}"
    return _sentence(f"{scene} with {join_list(items)}" if items else scene)


def _colour_breakdown(graph: SceneGraph, cat: str) -> str:
    groups = sorted(Counter(o.colour for o in graph.objects if o.category == cat).items(), key=lambda kv: (-kv[1], kv[0]))
    items = [counted(n, cat, colour) for colour, n in groups]
    verb = "is" if groups[0][1] == 1 else "are"  # agrees with the first item: "there is a red car and a blue car"
    return _sentence(f"there {verb} {join_list(items)}")


def _feature_relation(graph: SceneGraph, cat: str, relation: str, feature: str) -> str:
    holders = [o for o in graph.objects if o.category == cat and graph.related(o.id, relation, feature)]
    total = graph.count(cat)
    phrase = f"{RELATION_PHRASES[relation]} the {feature}"
    if len(holders) == 1:
        obj = holders[0]
        np_ = noun_phrase(cat, colour=obj.colour)
        return _sentence(f"{article(np_)} {np_} is {phrase}")
    if len(holders) == total:
        return _sentence(f"the {NUMBER_WORDS[total]} {CATEGORIES[cat].plural} are {phrase}")
    return _sentence(f"several {CATEGORIES[cat].plural} are {phrase}")


def _pair(graph: SceneGraph, rel: Relation, rng: np.random.Generator) -> str:
    a, b = graph.objects[rel.subject], graph.objects[int(rel.object)]
    predicate = rel.predicate
    if predicate == "left of" and rng.random() < 0.5:
        a, b, predicate = b, a, "right of"
    elif predicate == "next to" and rng.random() < 0.5:
        a, b = b, a
    na, nb = noun_phrase(a.category, colour=a.colour), noun_phrase(b.category, colour=b.colour)
    return _sentence(f"{article(na)} {na} is {RELATION_PHRASES[predicate]} {article(nb)} {nb}")


def _position(graph: SceneGraph, obj: SceneObject) -> str:
    np_ = noun_phrase(obj.category, colour=obj.colour, size=obj.size)
    return _sentence(f"{article(np_)} {np_} is {REGION_PHRASES[graph.region(obj)]}")


def _feature_attribute(feature: str, attrs: tuple[str, ...]) -> str:
    if feature == "farmland":
        return _sentence(f"the fields are {join_list(list(attrs))}")
    return _sentence(f"the {feature} is {join_list(list(attrs))}")


OPENERS: tuple[str, ...] = (
    "an aerial image of", "a top-down view of", "this is", "the image shows", "a satellite image of",
)  # fmt: skip


def captions(graph: SceneGraph, rng: np.random.Generator) -> list[str]:
    """:data:`N_CAPTIONS` different one-sentence captions, the first an overview."""
    openers = [OPENERS[i] for i in rng.permutation(len(OPENERS))]
    pool: list[list[str]] = []  # one list per kind of statement
    cats = sorted({o.category for o in graph.objects})
    pool.append([_colour_breakdown(graph, c) for c in cats if len(CATEGORIES[c].colours) > 1])
    feature_rel = sorted(
        {(graph.objects[r.subject].category, r.predicate, r.object) for r in graph.relations if isinstance(r.object, str)}
    )
    pool.append([_feature_relation(graph, c, p, f) for c, p, f in feature_rel])
    pairs = [r for r in graph.relations if isinstance(r.object, int)]
    pool.append([_pair(graph, pairs[i], rng) for i in rng.permutation(len(pairs))[:4]])
    pool.append([_position(graph, graph.objects[i]) for i in rng.permutation(len(graph.objects))[:3]])
    pool.append([_feature_attribute(f, a) for f, a in graph.features.items() if a])
    out = [_overview(graph, openers[0])]
    kinds = [k for k in rng.permutation(len(pool)) if pool[k]]
    while len(out) < N_CAPTIONS and any(pool[k] for k in kinds):
        for k in kinds:
            if pool[k] and len(out) < N_CAPTIONS:
                choice = pool[k].pop(int(rng.integers(len(pool[k]))))
                if choice not in out:
                    out.append(choice)
    for opener in openers[1:]:
        if len(out) >= N_CAPTIONS:
            break
        out.append(_overview(graph, opener))
    return out[:N_CAPTIONS]


# -- what the text may claim -------------------------------------------------------


def truth_tuples(graph: SceneGraph) -> frozenset[tuple[str, ...]]:
    """Every tuple a true caption of ``graph`` may give in :mod:`aerith.eval.scene_graph` terms.

    Objects: the categories present, the land-cover features and the scene noun.
    Attributes: each object's colour and size word; counts of each category and
    of each colour group; ``several`` for a category with two or more objects;
    the features' attributes. Relations: the graph's relations at category level
    (``surrounded by`` stored as ``surrounding`` the other way round, ``next to``
    with sorted ends), the scene ``with`` each category and each category ``in``
    the scene, and a road or runway ``across`` the scene.
    """
    head = graph.noun.removeprefix("dense ")
    out: set[tuple[str, ...]] = {(head,)}
    if graph.noun.startswith("dense "):
        out.add((head, "dense"))
    for feature, attrs in graph.features.items():
        out.add((feature,))
        out.update((feature, a) for a in attrs)
        if feature in ("road", "runway") and feature != head:
            out.add((feature, "across", head))
    counts = Counter(o.category for o in graph.objects)
    for cat, n in counts.items():
        out |= {(cat,), (cat, str(n)), (head, "with", cat), (cat, "in", head)}
        if n >= 2:
            out.add((cat, "several"))
    for (cat, colour), n in Counter((o.category, o.colour) for o in graph.objects).items():
        out |= {(cat, colour), (cat, str(n))}
    for obj in graph.objects:
        out.add((obj.category, obj.size))
    for rel in graph.relations:
        subject = graph.objects[rel.subject].category
        other = graph.objects[rel.object].category if isinstance(rel.object, int) else rel.object
        if rel.predicate == "surrounded by":
            out.add((other, "surrounding", subject))
        elif rel.predicate == "next to":
            a, b = sorted((subject, other))
            out.add((a, "next to", b))
        else:
            out.add((subject, rel.predicate, other))
    return frozenset(out)
