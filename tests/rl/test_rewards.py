import numpy as np
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
    assert default_weights() == {
        "cider": 1.0, "sg_f1": 0.5, "hallucination": 0.5, "missing": 0.0, "repetition": 0.0, "unseen_trigrams": 0.0
    }
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


def test_unseen_trigrams_flag_word_sequences_no_training_reference_wrote():
    """SynthRS captions of held-out scenes reuse the training references' trigrams; the broken captions
    SCST wrote in the quickstart (the scene noun pasted into a position or a subject slot) do not."""
    from aerith.data.synthrs.language import captions
    from aerith.data.synthrs.layout import CLASS_NAMES, make_scene

    refs = []
    for i in range(300):
        rng = np.random.default_rng([7, i])
        _, graph = make_scene(i, CLASS_NAMES[i % len(CLASS_NAMES)], 64, rng)
        refs.append(captions(graph, rng))
    reward = CaptionReward(CiderD.fit(refs[:250]), {**dict.fromkeys(REWARDS, 0.0), "unseen_trigrams": 1.0})
    held_out = [c for r in refs[250:] for c in r]
    scores = reward.terms(held_out, [["x"]] * len(held_out))["unseen_trigrams"]
    clean = sum(s == 0 for s in scores) / len(scores)
    broken = ["A small white building is at the farmland.", "A white storage tank is a industrial with two storage tanks."]
    out = reward.terms(broken, [["x"]] * 2)
    assert clean > 0.9, clean
    assert out["unseen_trigrams"][0] == 1.0  # "at the farmland"
    assert out["unseen_trigrams"][1] > 0
    assert out["total"] == [-s for s in out["unseen_trigrams"]]
    with pytest.raises(ValueError, match="up to trigrams, these stop at n=2"):
        CaptionReward(CiderD.fit(REFS, n=2)).terms(["two ships in a harbor"], [REFS[1]])


def test_a_reference_string_is_refused_not_read_as_characters(reward):
    with pytest.raises(TypeError, match=r"references\[0\] is a string"):
        reward.terms(["two ships in the harbor"], ["two ships in the harbor"])
