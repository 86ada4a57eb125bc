import pytest

from aerith.eval import vqa_scores
from aerith.eval.vqa import bucket, named_bucket, normalize_answer, parse_number, parse_quantity


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Yes.", "yes"),
        ("yes", "yes"),
        ("YES, there is a road.", "yes"),
        ("True", "yes"),
        ("No", "no"),
        ("nope", "no"),
        ("The urban.", "urban"),
        ("Rural", "rural"),
        ("three", "3"),
        ("Twenty-one", "21"),
        ("a hundred and five", "105"),
        ("1,200m2", "1200 m2"),
        ("No idea.", "no idea"),  # hedges are neither yes nor no
        ("yes and no", "yes and no"),
        ("no and yes", "no and yes"),
        ("N/A", "n a"),  # one letter is not an answer word
        ("three and four", "3 and 4"),  # two numbers, not seven
        ("five six", "5 6"),
        ("twenty twelve", "20 12"),
        ("one hundred and five", "105"),
    ],
)
def test_normalize_answer(answer, expected):
    assert normalize_answer(answer) == expected


def test_parse_number_and_buckets():
    assert parse_number("There are 12 cars.") == 12
    assert parse_number("twelve") == 12
    assert parse_number("1,200 m2") == 1200
    assert parse_number("2.5m2") == 2.5
    assert parse_number("none") is None
    assert parse_number("No, there are none.", none_is_zero=True) == 0
    assert parse_number("No, there are 3.", none_is_zero=True) == 3
    assert parse_number("no idea", none_is_zero=True) is None
    assert parse_number("There are no buildings.", none_is_zero=True) == 0  # was unparsable: no number, "there" first
    assert parse_number("There's none.", none_is_zero=True) == 0
    assert parse_number("There are no buildings.") is None
    assert parse_number("There are many buildings.", none_is_zero=True) is None
    assert parse_number("between three and four") == 3
    assert [bucket(v) for v in (0, 1, 10, 11, 100, 101, 1000, 1001)] == [
        "0", "1-10", "1-10", "11-100", "11-100", "101-1000", "101-1000", ">1000"
    ]


def test_scores_hand_computed():
    preds = ["yes", "No.", "3", "five", "12", "0m2", "1500 m2", "rural", "I don't know"]
    refs = ["Yes", "yes", "3", "4", "15", ["0m2"], "1200m2", "urban", "7"]
    types = ["presence", "presence", "count", "count", "count", "area", "area", "rural_urban", "count"]
    s = vqa_scores(preds, refs, types)
    pt = s["per_type"]
    assert pt["presence"] == {"accuracy": 0.5, "n": 2}
    assert pt["rural_urban"] == {"accuracy": 0.0, "n": 1}
    assert pt["count"]["accuracy"] == pytest.approx(1 / 4)
    assert pt["count"]["accuracy_bucketed"] == pytest.approx(3 / 4)  # 5 vs 4, 12 vs 15 same bucket
    assert pt["count"]["unparsed"] == 1
    assert pt["count"]["per_bucket"] == {"1-10": pytest.approx(1 / 3), "11-100": 0.0}
    assert pt["area"]["accuracy"] == 0.5 and pt["area"]["accuracy_bucketed"] == 1.0
    assert s["AA"] == pytest.approx((0.5 + 0.25 + 0.5 + 0.0) / 4)
    assert s["OA"] == pytest.approx(3 / 9)
    assert s["AA_bucketed"] == pytest.approx((0.5 + 0.75 + 1.0 + 0.0) / 4)
    assert s["OA_bucketed"] == pytest.approx(6 / 9)
    assert s["AA_no_count"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert s["OA_no_count"] == pytest.approx(2 / 5)
    assert s["n"] == 9


def test_several_accepted_answers_and_custom_types():
    s = vqa_scores(["Small"], [("small", "little")], ["size"])
    assert s["AA"] == 1.0 and s["AA_no_count"] == 1.0
    s = vqa_scores(["2"], ["two"], ["how_many"], count_types=("how_many",))
    assert s["per_type"]["how_many"]["accuracy_bucketed"] == 1.0
    assert s["AA_no_count"] is None and s["OA_no_count"] is None


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length: 2, 1, 2"):
        vqa_scores(["yes", "no"], ["yes"], ["presence", "presence"])
    with pytest.raises(ValueError, match="no predictions"):
        vqa_scores([], [], [])


def test_a_count_reference_without_a_number_is_compared_as_text_and_counted():
    scores = vqa_scores(["many", "3"], ["many", "many"], ["count", "count"])
    assert scores["per_type"]["count"]["accuracy"] == 0.5 and scores["per_type"]["count"]["unparsed_references"] == 2
    assert vqa_scores(["No idea."], ["no"], ["presence"])["OA"] == 0.0


def test_rsvqa_bucket_classes_are_bucketed_by_the_range_they_name():
    """RSVQA's own area classes ("between 10m2 and 100m2" = 11-100 m2) read by their first number
    fell a bucket low ("1-10"), and "more than 1000m2" into 101-1000."""
    preds = ["between 0m2 and 10m2", "between 10m2 and 100m2", "between 100m2 and 1000m2", "more than 1000m2", ">1000"]
    refs = ["7m2", "50m2", "600m2", "5000m2", "1001m2"]
    s = vqa_scores(preds, refs, ["area"] * 5)["per_type"]["area"]
    assert s["accuracy_bucketed"] == 1.0 and s["accuracy"] == 0.0 and s["unparsed"] == 0
    # a named bucket has no exact number: raw-right only as the reference's own text
    s = vqa_scores(["Between 10m2 and 100m2.", "50m2"], ["between 10m2 and 100m2"] * 2, ["area"] * 2)
    assert s["per_type"]["area"]["accuracy"] == 0.5 and s["per_type"]["area"]["accuracy_bucketed"] == 1.0
    assert s["per_type"]["area"]["per_bucket"] == {"11-100": 0.5}
    assert named_bucket("between 1 and 10") == "1-10" and named_bucket("0-10") == "1-10"
    assert named_bucket("between 5 and 50") is None and named_bucket("more than 100") is None
    assert parse_quantity("12 cars") == (12.0, "11-100") and parse_quantity("many") == (None, None)
    assert vqa_scores(["Yes, 5"], ["yes, 3"], ["count"])["OA"] == 0.0  # equal text alone does not make a number right
