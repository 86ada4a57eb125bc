import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.datasets.ucm import UCMerced
from aerith.imageio import load_rgb
from tests.fakes.ucm.data import CLASSES, ODD_IMAGE, PER_CLASS, write_fake

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_fake(tmp_path_factory.mktemp("ucm"))


def _names(ds):
    return {s.image.name for s in ds}


def test_counts_classes_and_labels(root):
    parts = {s: UCMerced(root, s) for s in SPLITS}
    assert sum(len(p) for p in parts.values()) == len(CLASSES) * PER_CLASS
    assert UCMerced.classes == CLASSES and len(UCMerced.classes) == 21
    for ds in parts.values():
        for s in ds:
            assert s.task == "cls" and s.prompt is None and s.box is None
            assert s.targets == (ds.classes[s.meta["label"]],)
            assert s.image.parent.name == s.targets[0]


def test_odd_sized_tiff_is_indexed_and_read(root):
    ds = UCMerced(root, ratios=(1, 0, 0))
    odd = next(s for s in ds if s.image.name == ODD_IMAGE[1])
    assert load_rgb(odd.image).size == ODD_IMAGE[2]


def test_seeded_split_deterministic_and_disjoint(root):
    first = {s: _names(UCMerced(root, s, seed=7)) for s in SPLITS}
    again = {s: _names(UCMerced(root, s, seed=7)) for s in SPLITS}
    assert first == again
    assert not (first["train"] & first["test"]) and not (first["train"] & first["val"])
    assert _names(UCMerced(root, "test", seed=8)) != first["test"]
    ds = UCMerced(root, "train", seed=7)
    assert "seed=7" in ds.split_source and "0.7/0.1/0.2" in ds.split_source


@pytest.mark.parametrize("sub", ["", "UCMerced_LandUse", "UCMerced_LandUse/Images"])
def test_alternative_roots(root, sub):
    ds = UCMerced(root / sub if sub else root, ratios=(1, 0, 0))
    assert len(ds) == 84 and ds.image_dir == root / "UCMerced_LandUse" / "Images"


def test_torchgeo_split_files(tmp_path):
    root = write_fake(tmp_path, split_files=True)
    parts = {s: UCMerced(root, s) for s in SPLITS}
    assert [len(parts[s]) for s in SPLITS] == [42, 21, 21]
    assert all(n.endswith("03.tif") for n in _names(parts["test"]))
    assert str(root / "uc_merced-val.txt") in parts["val"].split_source
    # found from the dataset folder too, and given explicitly as a file or a folder
    assert len(UCMerced(root / "UCMerced_LandUse", "val")) == 21
    assert len(UCMerced(root, "test", split_file=root / "uc_merced-test.txt")) == 21
    assert len(UCMerced(root, "test", split_file=root)) == 21


def test_seed_or_ratios_ask_for_the_seeded_split_beside_split_files(tmp_path):
    root = write_fake(tmp_path, split_files=True)
    half = {s: UCMerced(root, s, ratios=(0.5, 0.0, 0.5)) for s in SPLITS}
    assert [len(half[s]) for s in SPLITS] == [42, 0, 42]  # 4 images per class: 2 / 0 / 2, not the files' 42/21/21
    assert "seeded stratified split" in half["test"].split_source and "0.5/0/0.5" in half["test"].split_source
    assert "seed=7" in UCMerced(root, "train", seed=7).split_source
    with pytest.raises(ValueError, match="give split_file or seed/ratios"):
        UCMerced(root, "test", split_file=root, seed=1)


def test_incomplete_split_files_never_mix_with_a_random_split(tmp_path):
    root = write_fake(tmp_path, split_files=True)
    (root / "uc_merced-val.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="uc_merced-val.txt"):
        UCMerced(root, "val")


def test_split_file_naming_missing_image(tmp_path):
    root = write_fake(tmp_path, split_files=True)
    with open(root / "uc_merced-test.txt", "a") as f:
        f.write("beach99.tif\n")
    with pytest.raises(RecordError) as info:
        UCMerced(root, "test")
    assert "uc_merced-test.txt" in str(info.value) and "beach99.tif" in str(info.value)
    with pytest.warns(SkippedRecordsWarning, match="skipped 1"):
        assert len(UCMerced(root, "test", on_bad="skip")) == 21


def test_registry(root):
    ds = load_dataset("ucm", root, "test")
    assert isinstance(ds, UCMerced) and len(ds) == 21


def test_prompts_and_targets_spell_glued_class_names_as_words(root):
    from aerith.data.instructions import to_instruction
    from aerith.eval.benchmarks import get_benchmark

    ds = UCMerced(root, ratios=(1, 0, 0))
    sample = next(s for s in ds if s.targets == ("denseresidential",))
    inst = to_instruction(sample, classes=ds.classes, names=ds.class_names, phrasing=0)
    assert inst.target == "dense residential"
    assert "dense residential" in inst.prompt and "denseresidential" not in inst.prompt
    assert "mobile home park" in inst.prompt and "airplane" in inst.prompt
    bench = get_benchmark("ucm")
    ctx = bench.context(ds)
    prompt = bench.prompt(sample, ctx)
    assert "baseball diamond" in prompt and "baseballdiamond" not in prompt
    # labels and scores keep the canonical names; an answer in either spelling is that class
    for answer in ("dense residential", "denseresidential"):
        assert bench.parse(answer, sample, ctx).value == "denseresidential"
