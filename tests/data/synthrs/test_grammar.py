"""The caption well-formedness check accepts SynthRS's own captions and rejects broken ones."""

import numpy as np
import pytest

from aerith.data.synthrs.grammar import caption_problem, is_well_formed, well_formed_share
from aerith.data.synthrs.language import captions
from aerith.data.synthrs.layout import CLASS_NAMES, make_scene


def test_accepts_every_caption_of_the_shared_set(scenes):
    texts = [c for s in scenes for c in s["captions"]]
    assert len(texts) == 5 * len(scenes)
    rejected = {c: caption_problem(c) for c in texts if not is_well_formed(c)}
    assert not rejected


@pytest.mark.parametrize("size", [64, 128])
def test_accepts_captions_of_fresh_scenes_of_every_class(size):
    seen = set()
    for i in range(150):
        rng = np.random.default_rng([99, i])
        _, graph = make_scene(i, CLASS_NAMES[i % len(CLASS_NAMES)], size, rng)
        for text in captions(graph, rng):
            assert caption_problem(text) is None, text
            seen.add(text.split()[0])
    assert {"A", "An", "There", "The", "This", "Several"} <= seen  # every sentence kind came up


BROKEN = [
    "A white storage tank is a industrial with two storage tanks.",  # the SCST failure of issue 20
    "A airplane is on the runway.",
    "An white building is next to a red vehicle.",
    "There is two red buildings.",
    "There are a red building and a blue building.",
    "There is a red building and a red building.",
    "There are two red buildings, a green tree.",
    "A green airplane is to the left of a white ship.",  # airplanes are never green
    "A red ship is on the river.",  # a ship is in or along a river, never on it
    "The two building are along the road.",
    "The one building is along the road.",
    "This is a harbor with two ships and two ships.",
    "This is a harbor with a building and three ships.",  # the generator lists larger counts first
    "This is a harbor with four ships, three storage tanks, two buildings and a vehicle.",  # at most three
    "The image shows a airport.",
    "The river is curved",
    "the river is curved.",
    "The river is curved. The sea is blue.",
    "The river is straight.",
    "The fields are yellow and green.",  # listed in sorted order
    "The fields are green and green.",
    "The farmland is brown.",  # farmland's crop colours are said of "the fields", never of "the farmland"
    "The farmland is brown, green and yellow.",
    "A small white vehicle is on the left",
    "A small white vehicle is at the left.",
    "A white vehicle is on the left.",  # positions always give the size
    "A small white vehicle is next to.",
    "A small white vehicle is next to a.",
    "A white storage tank is next to a white storage tank with two storage tanks.",
    "This is an industrial area with with two storage tanks.",
    "This is an industrial area with two storage tanks,.",
    "",
    ".",
]


@pytest.mark.parametrize("text", BROKEN)
def test_rejects_broken_captions(text):
    assert caption_problem(text) is not None


def test_a_few_hand_written_sentences_of_each_kind_pass():
    good = [
        "This is an industrial area with three storage tanks, two buildings and a vehicle.",
        "A satellite image of a dense residential area.",
        "There are two red buildings, a blue building and a white building.",
        "There is a red vehicle and a yellow vehicle.",
        "A red ship is along the river.",
        "The two ships are in the water.",
        "Several buildings are surrounded by the forest.",
        "A red vehicle is to the right of a white airplane.",
        "A large green tennis court is at the bottom right.",
        "The fields are brown, green and yellow.",
        "The residential area is dense.",
    ]
    assert [caption_problem(t) for t in good] == [None] * len(good)
    assert well_formed_share(good + BROKEN[:11]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no captions"):
        well_formed_share([])
