import pytest

from aerith.eval import classification_scores, match_class

NWPU = ["airplane", "baseball_diamond", "dense_residential", "medium_residential", "storage_tank",
        "tennis_court", "harbor", "parking_lot", "beach", "river"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Airplane.", ("airplane", "exact")),
        ("The Baseball Diamond", ("baseball_diamond", "exact")),
        ("baseballDiamond", ("baseball_diamond", "exact")),
        ("parking-lot", ("parking_lot", "exact")),
        ('"beach"', ("beach", "exact")),
        ("This is a dense residential area.", ("dense_residential", "contained")),
        ("storage tanks", ("storage_tank", "contained")),
        ("beaches", ("beach", "contained")),
        ("harbour", ("harbor", "fuzzy")),
        ("airplan", ("airplane", "fuzzy")),
        ("a beach or a river", (None, "ambiguous")),
        ("It is not a beach.", (None, "negated")),  # a denied class is not the answer
        ("This isn't a river but a beach.", ("beach", "contained")),
        ("A beach with no river.", ("beach", "contained")),
        ("No, beach.", ("beach", "contained")),  # a negation ends with its clause
        ("Not a river. Beach.", ("beach", "contained")),
        ("Not sure, a beach", ("beach", "contained")),  # a hedge is no negation
        ("It is a beach, not a river", ("beach", "contained")),
        ("residential", (None, "none")),  # dense or medium: no guess
        ("golf course", (None, "none")),
        ("", (None, "none")),
    ],
)
def test_match_class(answer, expected):
    assert match_class(answer, NWPU) == expected


def test_camel_and_compound_class_names():
    ucm = ["denseresidential", "storagetanks", "tenniscourt"]
    assert match_class("Dense residential", ucm) == ("denseresidential", "exact")
    assert match_class("storage tank", ucm) == ("storagetanks", "contained")
    aid = ["BaseballField", "StorageTanks", "Parking"]
    assert match_class("baseball field", aid) == ("BaseballField", "exact")
    assert match_class("a parking lot", aid) == ("Parking", "contained")


def test_duplicate_classes_after_normalisation():
    with pytest.raises(ValueError, match="same after normalisation"):
        match_class("x", ["parking_lot", "ParkingLot"])


def test_scores_hand_computed():
    classes = ["beach", "river", "sea"]
    preds = ["beach", "It is a river.", "nothing", "a Beach", "sea", "river"]
    refs = ["beach", "beach", "river", "Beach", "sea", "sea"]
    s = classification_scores(preds, refs, classes)
    # beach: 2 of 3 right; river: 0 of 1 (unmatched); sea: 1 of 2
    assert s["accuracy"] == pytest.approx(3 / 6)
    assert s["per_class_accuracy"] == pytest.approx({"beach": 2 / 3, "river": 0.0, "sea": 0.5})
    assert s["balanced_accuracy"] == pytest.approx((2 / 3 + 0 + 0.5) / 3)
    assert s["unmatched"] == 1
    assert s["confusion_matrix"] == [[2, 1, 0], [0, 0, 0], [0, 1, 1]]
    assert s["unmatched_per_class"] == [0, 1, 0]
    assert s["match_counts"] == {"exact": 4, "contained": 1, "fuzzy": 0, "ambiguous": 0, "negated": 0, "none": 1}
    assert s["classes"] == classes and s["n"] == 6


def test_balanced_accuracy_ignores_absent_classes():
    s = classification_scores(["beach", "beach"], ["beach", "beach"], ["beach", "river"])
    assert s["balanced_accuracy"] == 1.0
    assert s["per_class_accuracy"] == {"beach": 1.0}


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length: 2 != 1"):
        classification_scores(["a", "b"], ["beach"], ["beach"])
    with pytest.raises(ValueError, match="references\\[0\\] = 'lake' is not one of the classes"):
        classification_scores(["beach"], ["lake"], ["beach"])
    with pytest.raises(ValueError, match="no predictions"):
        classification_scores([], [], ["beach"])
