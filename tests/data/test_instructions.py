"""Task adapters: prompts with task tokens, seeded phrasings, humanised classes, grid boxes."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aerith.boxes import from_grid
from aerith.data.instructions import (
    PHRASINGS,
    TASK_TOKENS,
    Instruction,
    eval_prompt,
    humanise,
    humanise_classes,
    parse_prompt,
    to_instruction,
)
from aerith.data.sample import Sample

CLASSES = ("Airport", "DenseResidential", "baseball_diamond", "Expressway-Service-area", "denseresidential")


def test_task_tokens_match_the_tokenizer() -> None:
    from aerith.models.tokenizer import TASK_TOKENS as TOKENIZER_TOKENS

    assert dict(TASK_TOKENS) == TOKENIZER_TOKENS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DenseResidential", "dense residential"),
        ("dense_residential", "dense residential"),
        ("Expressway-Service-area", "expressway service area"),
        ("footballField", "football field"),
        ("SeaLake", "sea lake"),
        ("denseresidential", "denseresidential"),  # glued lower case: left alone
        ("USGSArea", "USGS area"),
        ("  beach ", "beach"),
    ],
)
def test_humanise(name: str, expected: str) -> None:
    assert humanise(name) == expected


def test_humanise_mapping_wins_and_collisions_are_errors() -> None:
    assert humanise("denseresidential", {"denseresidential": "dense residential"}) == "dense residential"
    with pytest.raises(ValueError, match="'DenseResidential' and 'dense_residential'"):
        humanise_classes(["DenseResidential", "dense_residential"])


def test_cls_prompt_lists_humanised_classes_and_target_is_spelled_alike() -> None:
    sample = Sample(Path("x.png"), "cls", targets=("DenseResidential",))
    for index in range(20):
        ins = to_instruction(sample, classes=CLASSES, index=index)
        assert ins.prompt.startswith("[CLS] ")
        parsed = parse_prompt(ins.prompt)
        assert parsed is not None and parsed.task == "cls"
        assert parsed.classes == tuple(humanise_classes(CLASSES))
        assert ins.target == "dense residential" and ins.target in parsed.classes
    # the glued UCM name stays glued, in the list and in the target
    glued = to_instruction(Sample("x.png", "cls", targets=("denseresidential",)), classes=CLASSES, phrasing=0)
    assert glued.target == "denseresidential"
    assert glued.prompt.endswith("expressway service area, denseresidential.")


def test_cls_needs_classes_and_a_known_label() -> None:
    with pytest.raises(ValueError, match="class names"):
        to_instruction(Sample("x.png", "cls", targets=("beach",)))
    with pytest.raises(ValueError, match="'beach' is not one of"):
        to_instruction(Sample("x.png", "cls", targets=("beach",)), classes=CLASSES)


def test_canonical_prompts_equal_aerith_prompts() -> None:
    from aerith import prompts

    vqa = Sample("x.png", "vqa", prompt=" Is there a road? ", targets=("yes",))
    vg = Sample("x.png", "vg", prompt="the white storage tank at the top left.", box=(0, 0, 1, 1))
    assert eval_prompt("vqa", vqa) == prompts.vqa_prompt("Is there a road?")
    assert eval_prompt("vqa", vqa) == "[VQA] Is there a road? Answer with a single word or phrase."
    assert eval_prompt("cap") == prompts.caption_prompt() == "[CAP] Describe this image."
    assert eval_prompt("vg", vg) == prompts.ground_prompt(vg.prompt) == "[VG] Locate: the white storage tank at the top left."
    assert eval_prompt("cls", None, ["Airport", "Beach"]) == prompts.classify_prompt(["airport", "beach"])
    assert to_instruction(vqa, phrasing=0, index=5).prompt == eval_prompt("vqa", vqa)
    with pytest.raises(ValueError, match="cannot make a cap prompt"):
        eval_prompt("cap", vqa)
    with pytest.raises(ValueError, match="unknown task"):
        eval_prompt("det")


def test_every_phrasing_starts_with_its_token_and_parses_back() -> None:
    samples = {
        "cls": Sample("x.png", "cls", targets=("Airport",)),
        "vqa": Sample("x.png", "vqa", prompt="How many ships are there?", targets=("3",)),
        "cap": Sample("x.png", "cap", targets=("a harbor.",)),
        "vg": Sample("x.png", "vg", prompt="the ship on the left", box=(1, 2, 3, 4), meta={"image_size": (10, 10)}),
    }
    for task, templates in PHRASINGS.items():
        assert len(templates) >= 3
        for p in range(len(templates)):
            ins = to_instruction(samples[task], classes=CLASSES, phrasing=p)
            assert ins.prompt.startswith(TASK_TOKENS[task] + " ")
            parsed = parse_prompt(ins.prompt)
            assert parsed is not None and (parsed.task, parsed.phrasing) == (task, p)
            if task == "vqa":
                assert parsed.question == "How many ships are there?"
            if task == "vg":
                assert parsed.expression == "the ship on the left"
    with pytest.raises(ValueError, match="out of range"):
        to_instruction(samples["cap"], phrasing=len(PHRASINGS["cap"]))
    assert parse_prompt("[CAP] Tell me a story.") is None


def test_choice_is_deterministic_by_seed_and_index_and_leaves_global_state_alone() -> None:
    sample = Sample("x.png", "cap", targets=tuple(f"caption {i}." for i in range(5)))
    random.seed(123)
    np.random.seed(123)
    state, np_state = random.getstate(), np.random.get_state()
    first = [to_instruction(sample, seed=7, index=i) for i in range(40)]
    assert random.getstate() == state
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    random.seed(999)  # global state has no effect
    again = [to_instruction(sample, seed=7, index=i) for i in range(40)]
    assert first == again
    assert len({i.prompt for i in first}) == len(PHRASINGS["cap"])  # all phrasings used
    assert {i.target for i in first} == set(sample.targets)  # every reference used
    other = [to_instruction(sample, seed=8, index=i) for i in range(40)]
    assert [i.prompt for i in other] != [i.prompt for i in first]


def test_vqa_target_is_an_accepted_answer() -> None:
    sample = Sample("x.png", "vqa", prompt="Is it rural or urban?", targets=("urban", "Urban "), kind="rural_urban")
    targets = {to_instruction(sample, index=i).target for i in range(30)}
    assert targets == {"urban", "Urban"}
    with pytest.raises(ValueError, match="needs a question"):
        to_instruction(Sample("x.png", "vqa", targets=("yes",)))
    with pytest.raises(ValueError, match="no target"):
        to_instruction(Sample("x.png", "cap"))


def test_vg_target_on_the_grid_from_meta_or_the_image(tmp_path: Path) -> None:
    path = tmp_path / "scene.png"
    Image.new("RGB", (200, 100)).save(path)
    box = (10.0, 20.0, 110.0, 60.0)
    from_file = to_instruction(Sample(path, "vg", prompt="the car", box=box), phrasing=0)
    assert from_file == Instruction("vg", "[VG] Locate: the car", "[50, 200, 550, 600]", from_file.sample)
    from_meta = to_instruction(Sample("missing.png", "vg", prompt="the car", box=box, meta={"image_size": (400, 400)}))
    assert from_meta.target == "[25, 50, 275, 150]"
    grid = [int(v) for v in from_meta.target.strip("[]").split(",")]
    assert from_grid(grid, (400, 400)) == pytest.approx(box, abs=0.2)
    with pytest.raises(ValueError, match="needs a box"):
        to_instruction(Sample(path, "vg", prompt="the car"))
