"""Scene graphs of remote-sensing captions, for SG-F1 and the SCST reward.

This is the one scene-graph module of Aerith: the evaluation's SG-F1 and the
hallucination rates, and the SCST reward (DESIGN §4), all go through ``parse``.

SG-F1 is **not SPICE** and must never be reported as SPICE: it borrows SPICE's idea
(F1 over object, attribute and relation tuples of a caption against those of its
references) but parses with a small hand-written lexicon of RS objects instead of
the Stanford scene-graph parser, and matches tuples exactly after mapping synonyms
to one canonical name instead of through WordNet. It is deterministic, needs no
model or Java, and parses thousands of captions per second.

The built-in ``RuleParser`` works on lower-cased word tokens:

- Phrases are matched longest first at each position, over one table of object
  names (with synonyms and generated plurals: ``houses`` -> ``building``),
  attributes (colour, size, shape, density, counts as words or digits:
  ``three`` -> ``3``, ``a lot of`` -> ``many``), relation phrases (``in the middle
  of`` before ``in``), negations and copulas.
- Head-noun backoff: a noun compound is reduced to its last known noun. Unknown
  modifiers are skipped (``oil storage tanks``, ``gas tanks`` -> ``storage tank``
  through the head ``tank``) and adjacent object names merge into the last one
  (``road bridge`` -> ``bridge``, ``car park`` -> ``parking lot``).
- Attributes before a noun attach to it (``large white tanks``); after a copula they
  attach to the last object (``the lake is large``). An attribute that is also a
  noun reads as the noun when no noun follows (``around a square .`` -> ``plaza``).
- A relation links the last object before it in the sentence with the first object
  after it (``trees along the road`` -> ``(tree, along, road)``); a sentence that
  opens with the relation takes its subject after (``Beside the road are trees``).
  ``between`` takes two objects. Inverse phrases are stored one way round
  (``A surrounded by B`` -> ``(B, surrounding, A)``) and symmetric relations with
  their objects sorted (``near``, ``next to`` ...).
- Negated objects (``no ships``, ``without trees``, ``there isn't a car``) are left out of the graph, with
  the relations they would take part in.

Another parser (e.g. a FACTUAL model) can be used by passing any object with a
``parse(caption) -> SceneGraph`` method (the ``SceneGraphParser`` protocol).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

ObjectTuple = tuple[str]
AttributeTuple = tuple[str, str]
RelationTuple = tuple[str, str, str]

# canonical object -> surface forms (singular; plurals are generated)
OBJECTS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "building": ("building", "house", "residence", "home", "villa", "apartment", "skyscraper",
                 "dwelling", "cottage", "roof", "rooftop", "warehouse", "factory"),
    "storage tank": ("storage tank", "oil tank", "tank", "oil storage tank", "fuel tank", "silo"),
    "airplane": ("airplane", "aeroplane", "plane", "aircraft", "airliner", "jet"),
    "ship": ("ship", "boat", "vessel", "yacht", "ferry", "sailboat", "steamship"),
    "vehicle": ("vehicle", "car", "truck", "van", "bus", "automobile", "lorry"),
    "tree": ("tree", "vegetation", "greenery", "bush", "shrub"),
    "forest": ("forest", "woodland", "woods", "jungle"),
    "grass": ("grass", "lawn", "grassland", "meadow", "turf"),
    "road": ("road", "street", "highway", "freeway", "expressway", "avenue", "motorway", "boulevard"),
    "tennis court": ("tennis court",),
    "basketball court": ("basketball court",),
    "baseball field": ("baseball field", "baseball diamond", "baseball court"),
    "soccer field": ("soccer field", "football field", "football pitch", "soccer pitch"),
    "ground track field": ("ground track field", "running track", "track field", "playground"),
    "swimming pool": ("swimming pool", "pool"),
    "river": ("river", "stream", "creek", "canal"),
    "lake": ("lake", "pond", "reservoir"),
    "farmland": ("farmland", "field", "cropland", "farm", "crop", "crop field", "agricultural land",
                 "agricultural field", "paddy", "paddy field"),
    "bridge": ("bridge", "viaduct"),
    "overpass": ("overpass", "interchange", "flyover"),
    "runway": ("runway", "airstrip", "taxiway"),
    "parking lot": ("parking lot", "parking area", "car park", "parking", "parking space"),
    "beach": ("beach", "sand", "sandy beach", "shore", "seashore", "coast"),
    "sea": ("sea", "ocean", "sea water", "seawater"),
    "water": ("water",),
    "harbor": ("harbor", "harbour", "port", "dock", "pier", "wharf", "marina"),
    "airport": ("airport", "airfield"),
    "apron": ("apron",),
    "terminal": ("terminal",),
    "railway": ("railway", "railroad", "rail", "railway track", "train track"),
    "train station": ("train station", "railway station", "railroad station"),
    "train": ("train",),
    "stadium": ("stadium", "arena"),
    "church": ("church", "cathedral", "chapel"),
    "mountain": ("mountain", "hill"),
    "desert": ("desert", "dune", "sand dune"),
    "bare land": ("bare land", "bareland", "barren land", "wasteland", "open land"),
    "residential area": ("residential area", "residential district", "neighborhood", "neighbourhood"),
    "commercial area": ("commercial area", "commercial district", "downtown"),
    "industrial area": ("industrial area", "industrial zone", "industrial district"),
    "park": ("park", "garden"),
    "plaza": ("plaza", "square area"),
    "golf course": ("golf course", "golf field"),
    "intersection": ("intersection", "crossroad", "crossroads", "junction"),
    "roundabout": ("roundabout", "traffic circle"),
    "island": ("island", "islet"),
    "wetland": ("wetland", "marsh", "swamp"),
    "mobile home": ("mobile home", "trailer", "caravan"),
    "chimney": ("chimney",),
    "windmill": ("windmill", "wind turbine"),
    "dam": ("dam",),
    "container": ("container",),
    "crane": ("crane",),
    "school": ("school",),
    "cloud": ("cloud",),
})

# canonical attribute -> surface forms
ATTRIBUTES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "white": ("white", "whitish"), "black": ("black",), "gray": ("gray", "grey", "greyish", "grayish"),
    "red": ("red", "reddish"), "green": ("green", "greenish"), "blue": ("blue", "bluish"),
    "brown": ("brown", "brownish"), "yellow": ("yellow", "yellowish"), "orange": ("orange",),
    "purple": ("purple",), "silver": ("silver",), "dark": ("dark",), "light": ("light",),
    "bright": ("bright",),
    "large": ("large", "big", "huge", "giant", "enormous", "vast", "massive"),
    "small": ("small", "little", "tiny"), "long": ("long",), "short": ("short",),
    "wide": ("wide", "broad"), "narrow": ("narrow",), "tall": ("tall", "high rise"),
    "round": ("round", "circular"), "square": ("square",), "rectangular": ("rectangular", "rectangle"),
    "triangular": ("triangular",), "oval": ("oval",), "irregular": ("irregular",),
    "curved": ("curved", "curving", "winding", "meandering", "tortuous", "curvy"),
    "straight": ("straight",), "l-shaped": ("l shaped",),
    "dense": ("dense", "densely", "crowded", "compact"), "sparse": ("sparse", "sparsely", "scattered"),
    "neat": ("neat", "neatly", "orderly", "regular", "well arranged"),
    "empty": ("empty",), "busy": ("busy",),
    "many": ("many", "lots of", "a lot of", "numerous", "plenty of", "countless", "a large number of",
             "a great number of", "dozens of", "a great many"),
    "several": ("several", "some", "a few", "few", "a number of"),
    **{str(i): (w,) for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split())},
})
_EXTRA_COUNTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"1": ("a single", "single"), "2": ("a couple of", "a pair of", "both")}
)

# canonical relation -> surface phrases
RELATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "next to": ("next to", "beside", "adjacent to", "by", "on the side of", "by the side of"),
    "near": ("near", "close to", "near to", "nearby", "not far from"),
    "surrounding": ("surround", "surrounds", "surrounding", "around", "encircle", "encircles",
                    "encircling", "enclose", "encloses", "enclosing"),
    "along": ("along", "alongside", "on both sides of", "on either side of", "on each side of",
              "lining"),
    "on": ("on", "on top of", "upon"),
    "in": ("in", "inside", "within", "into"),
    "in the middle of": ("in the middle of", "in the center of", "in the centre of",
                         "at the center of", "at the centre of", "in the heart of"),
    "across": ("across", "over", "cross", "crosses", "crossing", "span", "spans", "spanning",
               "through", "traverse", "traverses", "traversing"),
    "between": ("between",),
    "among": ("among", "amongst"),
    "left of": ("on the left of", "to the left of", "left of", "on the left side of"),
    "above": ("above",),
    "in front of": ("in front of",),
    "with": ("with", "has", "have", "having", "contain", "contains", "containing", "full of"),
    "connected to": ("connected to", "connects", "connecting", "linked to", "links", "leading to",
                     "leads to"),
    "parallel to": ("parallel to", "parallel with"),
    "opposite": ("opposite", "opposite to", "facing"),
})
# phrase -> the relation it is the inverse of: (A phrase B) is stored as (B relation A)
INVERSE_RELATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "surrounding": ("surrounded by", "encircled by", "enclosed by", "ringed by", "circled by"),
    "along": ("lined with", "lined by", "flanked by"),
    "left of": ("on the right of", "to the right of", "right of", "on the right side of"),
    "above": ("below", "under", "beneath", "underneath"),
    "in front of": ("behind",),
})
SYMMETRIC_RELATIONS = frozenset({"next to", "near", "connected to", "parallel to", "opposite"})
# attributes that are nouns when no noun follows them: "around a square ." -> plaza
NOMINAL_ATTRIBUTES: Mapping[str, str] = MappingProxyType({"square": "plaza"})

# contractions are two tokens ("isn't", "isn’t" -> isn t): without them "there isn't a car" named a car
_NEGATIONS = ("no", "not", "without", "none of", "nor", "neither", "cannot",
              *(f"{verb}n't" for verb in ("do", "does", "did", "has", "have", "had", "ca", "could", "wo", "would")))
_NEGATED_COPULAS = ("isn't", "aren't", "wasn't", "weren't")  # read as the copula and "not"
# words after which a negation no longer holds (NegEx's termination terms): "no features except a river"
_NEGATION_ENDS = ("but", "except", "however", "although", "though", "yet", "aside from", "other than", "not only")
_COPULAS = ("is", "are", "was", "were", "be", "being", "been", "looks", "look", "seems", "seem",
            "appears", "appear")
_SENTENCE_END = frozenset({".", "!", "?", ";"})
_TOKEN = re.compile(r"[^\W\d_]+|\d{1,3}(?:,\d{3})+|\d+|[.!?;,]")  # "1,000" is one number
_IRREGULAR_PLURALS: Mapping[str, str] = MappingProxyType(
    {"person": "people", "man": "men", "woman": "women", "leaf": "leaves"}
)


@dataclass(frozen=True)
class SceneGraph:
    """Objects, attributes ``(object, attribute)`` and relations ``(subject, relation, object)``."""

    objects: frozenset[str] = frozenset()
    attributes: frozenset[AttributeTuple] = frozenset()
    relations: frozenset[RelationTuple] = frozenset()

    def tuples(self, kind: str | None = None) -> frozenset[tuple[str, ...]]:
        """SPICE-style tuples: 1-tuples for objects, 2 for attributes, 3 for relations.

        Args:
            kind: ``"object"``, ``"attribute"`` or ``"relation"``; ``None`` for all.
        """
        parts: dict[str, frozenset[tuple[str, ...]]] = {
            "object": frozenset((o,) for o in self.objects),
            "attribute": frozenset(self.attributes),
            "relation": frozenset(self.relations),
        }
        if kind is None:
            return parts["object"] | parts["attribute"] | parts["relation"]
        if kind not in parts:
            raise ValueError(f"unknown tuple kind {kind!r}; valid kinds: {', '.join(parts)}")
        return parts[kind]


class SceneGraphParser(Protocol):
    """Anything that turns a caption into a ``SceneGraph``."""

    def parse(self, caption: str) -> SceneGraph: ...


def _plural(word: str) -> str:
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.lower()))


def _plural_phrase(surface: str) -> str:
    """The plural of a noun phrase: its last word in the plural (``tennis courts``)."""
    *head, last = _phrase(surface)
    return " ".join((*head, _plural(last)))


@dataclass(frozen=True)
class _Chunk:
    kind: str  # object | attr | rel | inv | neg | stop | any | cop | and | comma | end
    value: str
    start: int
    end: int


class RuleParser:
    """The built-in lexicon-and-rules parser (see the module docstring)."""

    def __init__(
        self,
        objects: Mapping[str, Sequence[str]] = OBJECTS,
        attributes: Mapping[str, Sequence[str]] = ATTRIBUTES,
        relations: Mapping[str, Sequence[str]] = RELATIONS,
        inverse_relations: Mapping[str, Sequence[str]] = INVERSE_RELATIONS,
    ) -> None:
        table: dict[tuple[str, ...], tuple[str, str]] = {}

        def add(kind: str, value: str, surfaces: Iterable[str]) -> None:
            for surface in surfaces:
                key = _phrase(surface)
                if key in table and table[key] != (kind, value):
                    raise ValueError(f"phrase {surface!r} is both {table[key]} and {(kind, value)}")
                table[key] = (kind, value)

        for canonical, surfaces in objects.items():
            add("object", canonical, surfaces)
            add("object", canonical, (_plural_phrase(s) for s in surfaces))
        for canonical, surfaces in attributes.items():
            add("attr", canonical, surfaces)
        for canonical, surfaces in _EXTRA_COUNTS.items():
            add("attr", canonical, surfaces)
        for canonical, surfaces in relations.items():
            add("rel", canonical, surfaces)
        for canonical, surfaces in inverse_relations.items():
            add("inv", canonical, surfaces)
        add("neg", "not", _NEGATIONS)
        add("stop", "stop", _NEGATION_ENDS)
        add("any", "any", ("any",))
        add("cop", "is", _COPULAS)
        add("cop_neg", "is", _NEGATED_COPULAS)
        add("and", "and", ("and",))
        add("and", "or", ("or",))
        self._table = MappingProxyType(table)
        self._max_len = max(len(k) for k in table)

    def parse(self, caption: str) -> SceneGraph:
        """The scene graph of one caption."""
        return _Builder().build(self._chunks(_TOKEN.findall(caption.lower())))

    def head_object(self, phrase: str) -> str | None:
        """The canonical object a noun phrase is about: its last lexicon noun before any relation
        (``tree-lined road`` -> road, ``road with trees`` -> road, ``cars on the road`` -> vehicle)."""
        head = None
        for chunk in self._chunks(_TOKEN.findall(phrase.lower())):
            if chunk.kind in ("rel", "inv") and head is not None:
                break
            if chunk.kind == "object":
                head = chunk.value
        return head

    def _chunks(self, tokens: list[str]) -> list[_Chunk]:
        chunks: list[_Chunk] = []
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok in _SENTENCE_END or tok == ",":
                chunks.append(_Chunk("end" if tok in _SENTENCE_END else "comma", tok, i, i + 1))
                i += 1
                continue
            if tok[0].isdecimal():  # what \d matched; "²" or "①" is a digit to isdigit() but no int()
                chunks.append(_Chunk("attr", str(int(tok.replace(",", ""))), i, i + 1))
                i += 1
                continue
            for n in range(min(self._max_len, len(tokens) - i), 0, -1):
                hit = self._table.get(tuple(tokens[i : i + n]))
                if hit is not None:
                    kind, value = hit
                    if kind == "cop_neg":  # "isn't" is "is not": the copula, then the negation on "t"
                        chunks += [_Chunk("cop", value, i, i + n - 1), _Chunk("neg", "not", i + n - 1, i + n)]
                        i += n
                        break
                    if kind == "object" and chunks and chunks[-1].kind == "object" and chunks[-1].end == i:
                        chunks.pop()  # noun compound: the last noun is the head
                    chunks.append(_Chunk(kind, value, i, i + n))
                    i += n
                    break
            else:
                i += 1
        return chunks


class _Builder:
    """Walks the chunks of one caption, sentence by sentence, and collects the tuples."""

    def __init__(self) -> None:
        self.objects: set[str] = set()
        self.attributes: set[AttributeTuple] = set()
        self.relations: set[RelationTuple] = set()
        self._reset_sentence()

    def _reset_sentence(self) -> None:
        self.last: str | None = None  # last object of the sentence
        self.last_negated = False  # the last object was negated: relations after it have no subject
        self.pending: list[str] = []  # attributes waiting for their noun
        self.copula = False  # a copula followed the last object
        self.negated = False
        self.neg_end = -1  # token index just after the last negation
        self.relation: tuple[str, bool] | None = None  # (relation, inverse) waiting for its object
        self.relation_negated = False  # "is not next to": the objects are there, the relation is not
        self.subject: str | None = None  # the subject the waiting relation applies to
        self.rel_objects: list[str] = []  # objects taken by the waiting relation
        self.fronted = False  # the relation came before any object of the sentence

    def build(self, chunks: list[_Chunk]) -> SceneGraph:
        for chunk in [*chunks, _Chunk("end", "", -1, -1)]:
            if chunk.kind in ("end", "rel", "inv", "cop", "neg", "stop"):
                self._resolve_dangling()
            self.at = chunk
            getattr(self, f"_on_{chunk.kind}")(chunk.value)
        return SceneGraph(frozenset(self.objects), frozenset(self.attributes), frozenset(self.relations))

    def _resolve_dangling(self) -> None:
        """A noun phrase ended on an attribute that is also a noun: read it as the noun."""
        if self.pending and self.pending[-1] in NOMINAL_ATTRIBUTES and not (self.copula and self.last):
            self._on_object(NOMINAL_ATTRIBUTES[self.pending.pop()])

    def _flush_predicate(self) -> None:
        if self.copula and self.last is not None:
            if self.negated:  # "The lake is not large."
                self.negated = False
            else:
                self.attributes.update((self.last, a) for a in self.pending)
            self.pending = []

    def _on_attr(self, value: str) -> None:
        self.pending.append(value)

    def _on_cop(self, value: str) -> None:
        if self.last is not None:
            self.copula = True

    def _on_neg(self, value: str) -> None:
        self.negated = True
        self.neg_end = self.at.end

    def _on_any(self, value: str) -> None:
        if self.relation_negated and not self.rel_objects:
            self.negated = True  # "not next to any buildings": there are none

    def _on_stop(self, value: str) -> None:
        self._flush_predicate()
        self.negated = False

    def _on_and(self, value: str) -> None:
        self._flush_predicate()
        if value == "and" and self.negated and not self.pending:
            # the negation's noun was one the lexicon lacks ("no people and two trees"): it ends with its
            # phrase, as "no cars and a road" keeps the road; "no large and tall trees" still negates
            self.negated = False
        if value == "or" and self.last is None and self.last_negated:
            self.negated = True  # "no trees or buildings": neither is there

    def _on_comma(self, value: str) -> None:
        self._flush_predicate()
        self.negated = False

    def _on_end(self, value: str) -> None:
        self._flush_predicate()
        self._close_relation()
        self._reset_sentence()

    def _on_rel(self, value: str, inverse: bool = False) -> None:
        negates_relation = self.negated and self.at.start == self.neg_end  # "not next to"
        self._flush_predicate()
        self._close_relation()
        self.pending = []
        self.copula = False
        # a negation not right before the relation was of a word the lexicon lacks ("no windows next to")
        self.negated = False
        self.relation_negated = negates_relation
        self.relation = (value, inverse)
        self.subject = self.last
        self.fronted = self.last is None and not self.last_negated
        self.rel_objects = []

    def _on_inv(self, value: str) -> None:
        self._on_rel(value, inverse=True)

    def _on_object(self, value: str) -> None:
        if self.negated:
            self.negated = False
            self.pending = []
            self.relation = None
            self.last, self.last_negated = None, True
            return
        self.objects.add(value)
        self.attributes.update((value, a) for a in self.pending)
        self.pending = []
        self.copula = False
        if self.relation is not None:
            if self.fronted and self.rel_objects:
                self.subject = value  # "Beside the road are trees": the subject comes second
                self._close_relation()
            else:
                self.rel_objects.append(value)
                wanted = 2 if self.relation[0] == "between" else 1
                if len(self.rel_objects) >= wanted and not self.fronted:
                    self._close_relation()
        self.last, self.last_negated = value, False

    def _close_relation(self) -> None:
        if self.relation is not None and self.subject is not None and not self.relation_negated:
            name, inverse = self.relation
            for obj in self.rel_objects:
                if obj == self.subject:
                    continue
                subj, other = (obj, self.subject) if inverse else (self.subject, obj)
                if name in SYMMETRIC_RELATIONS:
                    subj, other = sorted((subj, other))
                self.relations.add((subj, name, other))
        self.relation = None
        self.rel_objects = []
        self.fronted = False


DEFAULT_PARSER = RuleParser()


def parse(caption: str, parser: SceneGraphParser | None = None) -> SceneGraph:
    """The scene graph of a caption (built-in ``RuleParser`` unless ``parser`` is given)."""
    return (parser or DEFAULT_PARSER).parse(caption)


def _graph(caption: str | SceneGraph, parser: SceneGraphParser | None) -> SceneGraph:
    return caption if isinstance(caption, SceneGraph) else parse(caption, parser)


def _prf(cand: frozenset[Any], ref: frozenset[Any]) -> tuple[float, float, float] | None:
    if not cand and not ref:
        return None
    matched = len(cand & ref)
    p = matched / len(cand) if cand else 0.0
    r = matched / len(ref) if ref else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _check_references(caller: str, references: Any) -> None:
    """A non-empty list of references, not one bare caption (it would be read as one reference per character) or graph."""
    if isinstance(references, str | SceneGraph):
        raise TypeError(f"{caller}: references must be a list of captions or graphs, got one {type(references).__name__}")
    if not references:
        raise ValueError(f"{caller} needs at least one reference")


def sg_f1(
    candidate: str | SceneGraph,
    references: Sequence[str | SceneGraph],
    *,
    parser: SceneGraphParser | None = None,
) -> dict[str, Any]:
    """SG-F1 (not SPICE): F1 of the candidate's tuples against the union of the references'.

    Args:
        candidate: a caption, or its already parsed graph.
        references: reference captions, or their parsed graphs (parse them once when
            scoring many candidates against the same references, as SCST does).
        parser: a ``SceneGraphParser``; the built-in rule parser by default.

    Returns:
        ``precision``, ``recall``, ``f1`` over all tuples (0.0 when neither side has
        any); ``{object,attribute,relation}_{precision,recall,f1}`` per tuple kind
        (``None`` when neither side has a tuple of that kind); ``candidate_tuples``,
        ``reference_tuples``, ``matched_tuples`` (counts).
    """
    _check_references("sg_f1", references)
    cand = _graph(candidate, parser)
    refs = [_graph(r, parser) for r in references]
    out: dict[str, Any] = {}
    for kind in ("object", "attribute", "relation"):
        c = cand.tuples(kind)
        r = frozenset().union(*(g.tuples(kind) for g in refs))
        prf = _prf(c, r)
        for name, value in zip(("precision", "recall", "f1"), prf or (None, None, None), strict=True):
            out[f"{kind}_{name}"] = value
    c_all = cand.tuples()
    r_all = frozenset().union(*(g.tuples() for g in refs))
    p, r, f = _prf(c_all, r_all) or (0.0, 0.0, 0.0)
    out.update(
        precision=p,
        recall=r,
        f1=f,
        candidate_tuples=len(c_all),
        reference_tuples=len(r_all),
        matched_tuples=len(c_all & r_all),
    )
    return out


def object_errors(
    candidate: str | SceneGraph,
    references: Sequence[str | SceneGraph],
    *,
    parser: SceneGraphParser | None = None,
) -> dict[str, Any]:
    """Hallucinated and missing objects of a caption.

    Hallucinated: objects in the caption that no reference mentions. Missing: objects
    that at least half of the references mention and the caption does not.

    Returns:
        ``hallucinated`` and ``missing`` (sorted object names), ``n_hallucinated``,
        ``n_missing``, ``n_objects`` (objects in the caption), ``n_salient`` (objects in
        at least half of the references), ``hallucination_rate`` = n_hallucinated /
        n_objects and ``missing_rate`` = n_missing / n_salient (0.0 when the divisor is 0).
    """
    _check_references("object_errors", references)
    cand = _graph(candidate, parser).objects
    refs = [_graph(r, parser).objects for r in references]
    mentioned = frozenset().union(*refs)
    salient = {o for o in mentioned if 2 * sum(o in r for r in refs) >= len(refs)}
    hallucinated = sorted(cand - mentioned)
    missing = sorted(salient - cand)
    return {
        "hallucinated": hallucinated,
        "missing": missing,
        "n_hallucinated": len(hallucinated),
        "n_missing": len(missing),
        "n_objects": len(cand),
        "n_salient": len(salient),
        "hallucination_rate": len(hallucinated) / len(cand) if cand else 0.0,
        "missing_rate": len(missing) / len(salient) if salient else 0.0,
    }
