import pytest

from aerith.eval.cider import CiderD
from aerith.rl.rewards import CaptionReward, RewardWeights

REFS = [
    ["a white storage tank next to a grey building", "one storage tank beside a building", "a storage tank and a building"],
    ["two ships in the harbor", "ships are docked in a harbor", "a harbor with two boats"],
]


@pytest.fixture
def reward():
    return CaptionReward(CiderD.fit(REFS), RewardWeights(cider=1.0, sg_f1=0.5, hallucination=1.0, missing=0.5))


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


def test_terms_combine_with_weights(reward):
    out = reward.terms(["two ships in a harbor", "a building"], REFS)
    w = reward.weights
    for i in range(2):
        expected = w.cider * out["cider"][i] + w.sg_f1 * out["sg_f1"][i] - w.hallucination * out["hallucination"][i] - w.missing * out["missing"][i]
        assert out["total"][i] == pytest.approx(expected)
    with pytest.raises(ValueError):
        reward.terms(["x"], REFS)
    with pytest.raises(ValueError):
        RewardWeights(cider=-1)
