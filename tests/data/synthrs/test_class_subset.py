"""SynthRS(classes=...): a subset of scene classes, for held-out (zero-shot) experiments."""

import pytest

from aerith.data import load_dataset
from aerith.data.instructions import to_instruction
from aerith.data.synthrs.layout import CLASS_NAMES

KEPT = ["harbor", "farmland"]


@pytest.mark.parametrize("task", ["cls", "vqa", "cap", "vg"])
def test_subset_keeps_exactly_the_scenes_of_those_classes(synth_root, task):
    full = load_dataset("synthrs", synth_root, "train", task=task)
    part = load_dataset("synthrs", synth_root, "train", task=task, classes=KEPT)
    assert part.classes == ("farmland", "harbor")  # label order, not the order asked
    expected = [s for s in full if s.meta["scene_class"] in KEPT]
    assert 0 < len(part) < len(full)
    assert [s.image for s in part] == [s.image for s in expected]
    assert [(s.prompt, s.targets, s.box) for s in part] == [(s.prompt, s.targets, s.box) for s in expected]


def test_classification_prompts_list_only_the_kept_classes(synth_root):
    part = load_dataset("synthrs", synth_root, "train", task="cls", classes=KEPT)
    ins = to_instruction(part[0], classes=part.classes, phrasing=0)
    assert "harbor" in ins.prompt and "farmland" in ins.prompt
    assert not any(c in ins.prompt for c in set(CLASS_NAMES) - set(KEPT))
    assert {s.targets[0] for s in part} == set(KEPT)


def test_labels_index_the_kept_classes(synth_root):
    # as every classification loader: targets == (classes[label],); harbor's label was 4 (its index among all ten)
    part = load_dataset("synthrs", synth_root, "train", task="cls", classes=KEPT)
    full = load_dataset("synthrs", synth_root, "train", task="cls")
    assert all(s.targets == (part.classes[s.meta["label"]],) for s in part)
    assert all(s.targets == (full.classes[s.meta["label"]],) for s in full)


def test_full_set_is_unchanged_without_classes(synth_root):
    assert load_dataset("synthrs", synth_root, "train", task="cls").classes == CLASS_NAMES


@pytest.mark.parametrize("classes", [["harbour"], [], ["harbor", "moon base"]])
def test_unknown_or_empty_class_list_is_an_error_listing_the_valid_ones(synth_root, classes):
    with pytest.raises(ValueError, match="valid classes: farmland, forest"):
        load_dataset("synthrs", synth_root, "train", task="cls", classes=classes)
