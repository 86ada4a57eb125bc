import pytest

from aerith.eval.cider import CiderD
from aerith.rl.rewards import REWARDS, CaptionReward, check_weights, default_weights

REFS = [
    ["a white storage tank next to a grey building", "one storage tank beside a building", "a storage tank and a building"],
    ["two ships in the harbor", "ships are docked in a harbor", "a harbor with two boats"],
]


@pytest.fixture
def reward():
    return CaptionReward(CiderD.fit(REFS), {"cider": 1.0, "sg_f1": 0.5, "hallucination": 1.0, "missing": 0.5})


def test_single_caption_gets_nonzero_cider(reward):
    out = reward.terms(["a white storage tank next to a building"], [REFS[0]])
    assert out["cider"][0] > 0.5
    assert 0 < out["sg_f1"][0] <= 1


def test_hallucinated_object_lowers_reward(reward):
    clean = reward.terms(["a white storage tank next to a building"], [REFS[0]])
    invented = reward.terms(["a white storage tank next to a building and an airplane"], [REFS[0]])
    assert invented["hallucination"][0] > 0 == clean["hallucination"][0]
    assert invented["total"][0] < clean["total"][0]


def test_missing_object_is_penalised(reward):
    out = reward.terms(["a white storage tank"], [REFS[0]])
    assert out["missing"][0] > 0


def test_repeated_bigrams_are_penalised_when_weighed():
    looping, plain = "a harbor with a harbor with two ships", "a harbor with two ships"
    weighed = CaptionReward(CiderD.fit(REFS), {"repetition": 1.0})
    out = weighed.terms([looping, plain], [REFS[1], REFS[1]])
    assert out["repetition"] == [pytest.approx(2 / 7), 0.0]  # "a harbor", "harbor with" again, of 7 bigrams
    unweighed = CaptionReward(weighed.cider, {"repetition": 0.0}).terms([looping], [REFS[1]])
    assert out["total"][0] == pytest.approx(unweighed["total"][0] - 2 / 7)


def test_terms_combine_with_weights(reward):
    out = reward.terms(["two ships in a harbor", "a building"], REFS)
    w = reward.weights
    for i in range(2):
        expected = w["cider"] * out["cider"][i] + w["sg_f1"] * out["sg_f1"][i] - w["hallucination"] * out["hallucination"][i] - w["missing"] * out["missing"][i]
        assert out["total"][i] == pytest.approx(expected)
    with pytest.raises(ValueError):
        reward.terms(["x"], REFS)
    with pytest.raises(ValueError, match="must be >= 0"):
        CaptionReward(reward.cider, {"cider": -1})


def test_weights_come_from_the_table():
    assert default_weights() == {"cider": 1.0, "sg_f1": 0.5, "hallucination": 0.5, "missing": 0.0, "repetition": 0.0}
    assert check_weights({"missing": 2}) == {**default_weights(), "missing": 2.0}
    with pytest.raises(ValueError, match="unknown reward term.*'bleu'.*valid terms: cider, sg_f1, hallucination, missing, repetition"):
        check_weights({"bleu": 1.0})
    for bad in ("1", True, float("nan"), None):
        with pytest.raises(ValueError, match="cider must be a finite number"):
            check_weights({"cider": bad})
    with pytest.raises(ValueError, match="all reward weights are 0"):
        check_weights(dict.fromkeys(REWARDS, 0.0))


def test_a_new_term_is_one_function_and_one_table_entry(monkeypatch):
    """What CONTRIBUTING.md promises: the table entry alone makes the term weighed, checked and reported."""
    from aerith.rl import rewards

    def length(batch):
        return [float(len(c.split())) for c in batch.captions]

    monkeypatch.setitem(rewards.REWARDS, "length", rewards.RewardTerm(length, weight=0.0, penalty=True))
    reward = CaptionReward(CiderD.fit(REFS), {"cider": 0.0, "sg_f1": 0.0, "hallucination": 0.0, "length": 0.1})
    out = reward.terms(["two ships in a harbor"], [REFS[1]])
    assert out["length"] == [5.0] and out["total"][0] == pytest.approx(-0.5)
