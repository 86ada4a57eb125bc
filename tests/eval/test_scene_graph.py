import pytest

from aerith.eval import SceneGraph, object_errors, sg_f1
from aerith.eval.scene_graph import RuleParser, parse


@pytest.mark.parametrize(
    ("caption", "objects"),
    [
        ("Several houses and a residence.", {"building"}),
        ("Oil tanks, storage tanks and a tank.", {"storage tank"}),
        ("A plane and two aircraft near an airplane.", {"airplane"}),
        ("boats, vessels and a ship", {"ship"}),
        ("cars and trucks on the highway", {"vehicle", "road"}),
        ("trees and vegetation along the street", {"tree", "road"}),
        ("a pond and a lake", {"lake"}),
        ("cropland and fields", {"farmland"}),
        ("two tennis courts and a baseball field", {"tennis court", "baseball field"}),
        ("a parking lot beside the sea and the beach", {"parking lot", "sea", "beach"}),
        ("a harbour with ships", {"harbor", "ship"}),
    ],
)
def test_synonyms_and_plurals(caption, objects):
    assert parse(caption).objects == objects


def test_head_noun_backoff():
    assert parse("Many oil storage tanks.").objects == {"storage tank"}
    assert parse("Some large gas tanks.").objects == {"storage tank"}
    assert parse("A road bridge.").objects == {"bridge"}
    assert parse("A car park.").objects == {"parking lot"}
    assert parse("residential buildings").objects == {"building"}


def test_attributes():
    g = parse("Three large white storage tanks. The lake is round and the trees are dark green.")
    assert g.attributes == {
        ("storage tank", "3"),
        ("storage tank", "large"),
        ("storage tank", "white"),
        ("lake", "round"),
        ("tree", "dark"),
        ("tree", "green"),
    }
    assert parse("a lot of cars and 12 big buildings").attributes == {
        ("vehicle", "many"),
        ("building", "12"),
        ("building", "large"),
    }


def test_relations_longest_first_and_canonical():
    g = parse("A lake in the middle of the park is surrounded by trees.")
    assert g.relations == {("lake", "in the middle of", "park"), ("tree", "surrounding", "park")}
    assert parse("Trees surround the lake.").relations == {("tree", "surrounding", "lake")}
    assert parse("The lake is surrounded by trees.").relations == {("tree", "surrounding", "lake")}
    # symmetric relations are stored with sorted ends, synonyms map to one name
    assert parse("houses next to the river").relations == parse("a river beside some houses").relations
    assert parse("a road on the left of the river").relations == {("road", "left of", "river")}
    assert parse("a road on the right of the river").relations == {("river", "left of", "road")}
    assert parse("a bridge between the farmland and the forest").relations == {
        ("bridge", "between", "farmland"),
        ("bridge", "between", "forest"),
    }
    assert parse("Beside the road are many cars.").relations == {("road", "next to", "vehicle")}
    assert parse("Trees grow along the river.").relations == {("tree", "along", "river")}
    assert parse("cars near the road. A lake.").relations == {("road", "near", "vehicle")}


def test_negated_objects_are_left_out():
    g = parse("There are no ships in the harbor and a lake without boats.")
    assert g.objects == {"harbor", "lake"}
    assert g.relations == set()


@pytest.mark.parametrize(
    ("caption", "objects", "attributes", "relations"),
    [
        ("The lake is not large.", {"lake"}, set(), set()),  # a negated predicate is no attribute
        ("There are no trees or buildings.", set(), set(), set()),  # the negation reaches past "or"
        ("A building with no windows next to a road.", {"building", "road"}, set(), {("building", "next to", "road")}),
        ("The image has no obvious features except a river.", {"river"}, set(), set()),  # "except" ends it
        ("The road is not next to the river.", {"road", "river"}, set(), set()),  # the relation is what is denied
        ("There are 1,000 cars.", {"vehicle"}, {("vehicle", "1000")}, set()),
        ("There are not only buildings but also trees.", {"building", "tree"}, set(), set()),  # no negation
        ("A lake, which is not next to any buildings.", {"lake"}, set(), set()),  # "any": there are none
        ("A road with no people and two trees.", {"road", "tree"}, {("tree", "2")}, {("road", "with", "tree")}),
        ("There is no snow and the trees are green.", {"tree"}, {("tree", "green")}, set()),  # ends it too
        ("No large and tall buildings.", set(), set(), set()),
        ("No people or cars.", set(), set(), set()),
        ("There isn't a car.", set(), set(), set()),  # a contraction negates as "not" does
        ("There aren’t any ships in the harbor.", {"harbor"}, set(), set()),
        ("The lake isn't large and cars aren't on the road.", {"lake", "vehicle", "road"}, set(), set()),
    ],
)
def test_negation_reaches_what_it_negates_and_no_further(caption, objects, attributes, relations):
    g = parse(caption)
    assert (g.objects, g.attributes, g.relations) == (objects, attributes, relations)


def test_sg_f1_perfect_and_empty():
    s = sg_f1("Many buildings near a river.", ["many houses are near the river"])
    assert s["precision"] == s["recall"] == s["f1"] == 1.0
    assert s["relation_f1"] == 1.0
    s = sg_f1("an image", ["a picture"])
    assert s["f1"] == 0.0 and s["object_f1"] is None and s["candidate_tuples"] == 0


def test_sg_f1_hand_computed_against_union_of_references():
    refs = ["many houses are near the river", "some buildings beside a river"]
    # reference tuples: building, river, (building, many), (building, several),
    # (building, near, river), (building, next to, river): 6
    s = sg_f1("many buildings near a river", refs)
    assert s["reference_tuples"] == 6 and s["candidate_tuples"] == 4 and s["matched_tuples"] == 4
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(4 / 6)
    assert s["attribute_recall"] == 0.5 and s["relation_recall"] == 0.5


def test_hallucinated_object_lowers_precision_and_is_reported():
    refs = ["many houses are near the river", "some buildings beside a river", "buildings and trees"]
    clean = sg_f1("many buildings near a river", refs)
    halluc = sg_f1("many buildings near a river and a ship", refs)
    assert halluc["precision"] < clean["precision"]
    assert halluc["object_precision"] == pytest.approx(2 / 3)
    err = object_errors("many buildings near a river and a ship", refs)
    assert err["hallucinated"] == ["ship"] and err["n_hallucinated"] == 1
    assert err["hallucination_rate"] == pytest.approx(1 / 3)
    # building in 3/3 refs, river in 2/3: salient; tree in 1/3: not
    assert err["n_salient"] == 2 and err["missing"] == []
    err = object_errors("a ship", refs)
    assert err["missing"] == ["building", "river"] and err["missing_rate"] == 1.0


def test_parsed_graphs_and_custom_parser_are_accepted():
    refs = [parse("a lake")]
    assert sg_f1(parse("a lake"), refs)["f1"] == 1.0

    class Fixed:
        def parse(self, caption: str) -> SceneGraph:
            return SceneGraph(objects=frozenset({caption}))

    assert sg_f1("x", ["x"], parser=Fixed())["f1"] == 1.0
    assert object_errors("x", ["y"], parser=Fixed())["hallucinated"] == ["x"]


def test_lexicon_conflicts_are_rejected():
    with pytest.raises(ValueError, match="is both"):
        RuleParser(objects={"tree": ("tree",)}, attributes={"green": ("tree",)})


def test_deterministic():
    # (no speed assertion: timings belong in benchmarks/, not in tests)
    caption = (
        "Many white oil storage tanks are next to a road, and some green trees surround "
        "the lake in the middle of the park."
    )
    assert parse(caption) == parse(caption)


def test_a_factual_entity_is_its_head_noun():
    from aerith.rl.factual import FactualParser

    g = FactualParser.to_scene_graph({"entities": [{"head": "tree-lined road", "attributes": ["long"]}], "relations": []})
    assert g.objects == {"road"} and g.attributes == {("road", "long")}  # not tree, the alphabetically last
    from aerith.eval.scene_graph import DEFAULT_PARSER

    assert [DEFAULT_PARSER.head_object(p) for p in ("road with trees", "cars on the road")] == ["road", "vehicle"]


def test_a_factual_entity_without_a_head_gives_no_tuples():
    from aerith.rl.factual import FactualParser

    g = FactualParser.to_scene_graph({
        "entities": [{"head": "", "attributes": ["white"]}, {"head": None}, {"head": "road"}],
        "relations": [{"subject": 0, "relation": "near", "object": 2}, {"subject": 1, "relation": "on", "object": 2}],
    })
    assert (g.objects, g.attributes, g.relations) == ({"road"}, set(), set())


@pytest.mark.parametrize("caption", ["About 3² buildings.", "A building ① beside a road.", "٣ ships"])
def test_unicode_digits_that_are_no_numbers_do_not_crash_the_parser(caption):
    """'²' and '①' are letters to the tokenizer and digits to str.isdigit(): int() raised on them."""
    g = parse(caption)
    assert g.objects <= {"building", "road", "ship"} and g.objects
    assert parse("٣ ships").attributes == {("ship", "3")}  # an Arabic-Indic digit is a number


def test_one_reference_string_is_refused_not_read_as_characters():
    """A bare string was iterated as one-character references: every object hallucinated, F1 0."""
    for fn in (sg_f1, object_errors):
        with pytest.raises(TypeError, match="references must be a list"):
            fn("two ships in the harbor", "two ships in the harbor")
        with pytest.raises(TypeError, match="references must be a list"):
            fn("two ships", parse("two ships"))
