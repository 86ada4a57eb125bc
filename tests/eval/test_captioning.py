"""Caption metrics against pycocoevalcap's own scorers. Java runs twice in this module
(once for ours, once for the reference), so both runs are shared by all tests."""

import shutil

import pytest

from aerith.eval import caption_scores, captioning
from aerith.eval.captioning import scene_graph_scores

PREDICTIONS = {
    1: "Many white storage tanks are next to a road.",
    2: "A ship in the harbor.",
    "x": "Green trees surround the lake, and a boat is on it.",
    4: "",
}
REFERENCES = {
    1: ["Several white oil tanks stand beside the road.", "Many storage tanks near a road.", "tanks"],
    2: ["Many boats are docked in the harbour.", "Ships in a port"],
    "x": ["The lake is surrounded by green trees.", "A lake with trees around it."],
    4: ["A dense residential area.", "Many buildings."],
}

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap needs Java")


@pytest.fixture(scope="module")
def ours():
    closed = []
    original = captioning._close_meteor

    def spy(meteor):
        original(meteor)
        closed.append(meteor.meteor_p)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(captioning, "_close_meteor", spy)
        scores = caption_scores(PREDICTIONS, REFERENCES)
    return scores, closed


@pytest.fixture(scope="module")
def reference():
    """pycocoevalcap's scorers used the way COCOEvalCap.evaluate() uses them."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in REFERENCES.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in PREDICTIONS.items()})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor = Meteor()
    try:
        meteor_score, _ = meteor.compute_score(gts, res)
    finally:
        captioning._close_meteor(meteor)
    return {
        **{f"BLEU-{i + 1}": b for i, b in enumerate(bleu)},
        "METEOR": meteor_score,
        "ROUGE-L": Rouge().compute_score(gts, res)[0],
        "CIDEr-D": Cider().compute_score(gts, res)[0],
    }


def test_equal_to_pycocoevalcap(ours, reference):
    scores, _ = ours
    for key, value in reference.items():
        assert scores[key] == pytest.approx(value, abs=1e-9), key
    assert 0 < scores["BLEU-1"] < 1 and scores["CIDEr-D"] > 0


def test_meteor_process_is_closed(ours):
    _, closed = ours
    assert len(closed) == 1 and closed[0].returncode is not None


def test_scene_graph_keys(ours):
    scores, _ = ours
    assert scores["n"] == 4
    assert scores == pytest.approx({**scores, **scene_graph_scores(PREDICTIONS, REFERENCES)})
    for key in ("SG-P", "SG-R", "SG-F1", "SG-F1-object", "SG-F1-attribute", "SG-F1-relation",
                "hallucination_rate", "hallucinated_caption_rate", "missing_rate"):
        assert key in scores
    assert "SPICE" not in scores


def test_scene_graph_scores_hand_computed():
    preds = {1: "a ship in the harbor", 2: "a lake"}
    refs = {1: ["boats in the harbour", "a harbor"], 2: ["a lake and a road", "a lake", "a road"]}
    s = scene_graph_scores(preds, refs)
    # image 1: ship, harbor, (ship, in, harbor) all in the references -> P = R = F = 1
    # image 2: lake vs {lake, road}: P = 1, R = 1/2, F = 2/3
    assert s["SG-P"] == 1.0
    assert s["SG-R"] == pytest.approx(0.75)
    assert s["SG-F1"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["SG-F1-relation"] == 1.0  # image 2 has no relation on either side: left out
    assert s["hallucination_rate"] == 0.0
    assert s["missing_rate"] == pytest.approx(1 / 4)  # road is salient (2 of 3) and missing
    s = scene_graph_scores({1: "a ship and a plane"}, {1: ["a ship"]})
    assert s["hallucination_rate"] == 0.5 and s["hallucinated_caption_rate"] == 1.0
    # no caption names an object, no reference names one: no rate, rather than a perfect one
    s = scene_graph_scores({1: "", 2: "a nice image"}, {1: ["a ship"], 2: ["a road"]})
    assert s["hallucination_rate"] is None and s["hallucinated_caption_rate"] is None and s["missing_rate"] == 1.0
    assert scene_graph_scores({1: "a ship"}, {1: ["it is a nice image"]})["missing_rate"] is None


def test_without_scene_graph(monkeypatch):
    monkeypatch.setattr(captioning, "coco_scores", lambda p, r: {"BLEU-1": 0.5})
    assert caption_scores({1: "a"}, {1: ["a"]}, scene_graph=False) == {"BLEU-1": 0.5, "n": 1}


def test_bad_inputs(monkeypatch):
    with pytest.raises(ValueError, match="1 ids without a prediction"):
        caption_scores({1: "a"}, {1: ["a"], 2: ["b"]})
    with pytest.raises(ValueError, match="non-empty list"):
        caption_scores({1: "a"}, {1: []})
    with pytest.raises(ValueError, match="non-empty list"):
        caption_scores({1: "a"}, {1: "a"})
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs Java"):
        caption_scores({1: "a"}, {1: ["a"]})


def test_line_breaks_inside_a_caption_keep_captions_with_their_images():
    """Stanford's tokenizer ends a line on "\\r", U+2028 ... too; pycocoevalcap replaces only "\\n", so such a
    caption became two lines and every later caption was scored against another image's references."""
    captions = {
        ("ref", 1): ["a red car\r\n", "two\u2028cars"],
        ("ref", 2): ["a ship\x0bin the harbor"],
        ("pred", 1): ["a red\rcar"],
        ("pred", 2): ["a ship"],
    }
    assert captioning._ptb_tokenize(captions) == {
        ("ref", 1): ["a red car", "two cars"],
        ("ref", 2): ["a ship in the harbor"],
        ("pred", 1): ["a red car"],
        ("pred", 2): ["a ship"],
    }


def test_tokenizer_out_of_step_is_an_error(monkeypatch):
    from pycocoevalcap.tokenizer import ptbtokenizer

    monkeypatch.setattr(ptbtokenizer.PTBTokenizer, "tokenize", lambda self, c: {k: ["x"] for k in list(c)[:-1]})
    with pytest.raises(RuntimeError, match="out of step"):
        captioning._ptb_tokenize({1: ["a"], 2: ["b"]})
