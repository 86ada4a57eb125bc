import json
import random

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider

from aerith.eval import CiderD
from aerith.eval.cider import tokenize

VOCAB = "a the many some white green buildings trees road river lake near next to with and are in".split()


def _corpus(seed: int, n: int = 40):
    rng = random.Random(seed)

    def caption() -> str:
        return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 14)))

    gts = {i: [caption() for _ in range(rng.randint(1, 5))] for i in range(n)}
    res = {i: [caption()] for i in range(n)}
    return gts, res


def test_equals_pycocoevalcap_when_fitted_on_the_scored_corpus():
    gts, res = _corpus(0)
    mean, per_image = Cider().compute_score(gts, res)
    cider = CiderD.fit([gts[i] for i in gts])
    ours = cider.score_batch([res[i][0] for i in gts], [gts[i] for i in gts])
    assert np.mean(ours) == pytest.approx(mean, abs=1e-6)
    assert ours == pytest.approx(list(per_image), abs=1e-6)
    assert cider.score(res[3][0], gts[3]) == pytest.approx(per_image[3], abs=1e-6)


def test_single_caption_is_not_zero():
    gts, _ = _corpus(1)
    refs = ["many buildings near the road", "white buildings next to a road"]
    # pycocoevalcap on one image gives 0: its df comes from that image alone
    assert Cider().compute_score({0: refs}, {0: ["many buildings near the road"]})[0] == 0.0
    cider = CiderD.fit([*gts.values(), refs])
    assert cider.score("many buildings near the road", refs) > 1.0
    plain = cider.score("many buildings near the road", refs)
    assert cider.score("Many buildings, near the road!", refs) == plain
    assert cider.score("", refs) == 0.0


def test_hand_computed_unigram():
    # two images; "lake" in one, "a" in both -> idf(lake) = log 2, idf(a) = 0
    cider = CiderD.fit([["a lake"], ["a road"]], n=1)
    assert cider.df == {("a",): 2.0, ("lake",): 1.0, ("road",): 1.0}
    # candidate = reference: cosine 1, no length penalty, x10
    assert cider.score("a lake", ["a lake"]) == pytest.approx(10.0)
    assert cider.score("a road", ["a lake"]) == 0.0


def test_save_load_round_trip(tmp_path):
    gts, res = _corpus(2)
    cider = CiderD.fit(gts.values(), sigma=5.0)
    path = cider.save(tmp_path / "sub" / "df.json")
    assert [p.name for p in path.parent.iterdir()] == ["df.json"]  # no temp file left
    loaded = CiderD.load(path)
    assert loaded.df == cider.df and loaded.num_documents == 40 and loaded.sigma == 5.0
    assert loaded.score(res[0][0], gts[0]) == cider.score(res[0][0], gts[0])
    assert json.loads(path.read_text())["format"] == "aerith-cider-d"


def test_load_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a CIDEr-D"):
        CiderD.load(bad)
    with pytest.raises(ValueError, match="cannot read"):
        CiderD.load(tmp_path / "missing.json")
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="bad.json: cannot read"):
        CiderD.load(bad)
    good = {"format": "aerith-cider-d", "n": 4, "sigma": 6.0, "num_documents": 3, "document_frequency": {"a": 1}}
    for change, field in (
        ({"n": "four"}, "n or sigma"),
        ({"num_documents": 0}, "num_documents"),
        ({"document_frequency": {"a b": "x"}}, "document_frequency"),
        ({"document_frequency": {"a b": float("nan")}}, "document_frequency: ValueError: n-gram 'a b'"),
        ({"document_frequency": {"a": -1}}, "document_frequency"),
    ):
        bad.write_text(json.dumps({**good, **change}))
        with pytest.raises(ValueError, match=f"bad.json: malformed CIDEr-D file, field .*{field}"):
            CiderD.load(bad)


def test_bad_inputs():
    cider = CiderD.fit([["a lake"]])
    with pytest.raises(ValueError, match="differ in length: 2 != 1"):
        cider.score_batch(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="non-empty"):
        cider.score("a lake", [])
    with pytest.raises(TypeError, match="list of reference captions"):
        CiderD.fit(["a lake"])
    assert tokenize("A white_tank, next-to THE road.") == ["a", "white", "tank", "next", "to", "the", "road"]
