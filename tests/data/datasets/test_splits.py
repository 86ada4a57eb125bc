import random

import pytest

from aerith.data import DatasetNotFoundError, RecordError
from aerith.data.splits import (
    DEFAULT_RATIOS,
    check_ratios,
    find_split_file,
    read_split_file,
    select_by_name,
    stratified_split,
)


def _items(classes=("a", "b", "c"), per_class=10):
    return [(f"{c}/{c}_{i:02d}.jpg", c) for c in classes for i in range(per_class)]


def test_check_ratios():
    assert check_ratios() == DEFAULT_RATIOS == (0.7, 0.1, 0.2)
    assert check_ratios({"train": 0.2, "test": 0.8}) == (0.2, 0.0, 0.8)
    assert check_ratios([0.5, 0.25, 0.25]) == (0.5, 0.25, 0.25)
    for bad in [(0.5, 0.5), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1), {"train": 0.5, "dev": 0.5}, ("a", 0, 1)]:
        with pytest.raises(ValueError):
            check_ratios(bad)


def test_stratified_split_is_stratified_disjoint_and_complete():
    items = _items(per_class=10)
    parts = stratified_split(items, seed=0)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [21, 3, 6]
    for c in "abc":
        assert [sum(1 for _, label in parts[s] if label == c) for s in ("train", "val", "test")] == [7, 1, 2]
    names = [item for s in parts.values() for item, _ in s]
    assert sorted(names) == sorted(item for item, _ in items)
    assert len(set(names)) == len(names)


def test_stratified_split_is_deterministic_and_order_independent():
    items = _items()
    shuffled = items[:]
    random.Random(5).shuffle(shuffled)
    assert stratified_split(items, seed=3) == stratified_split(shuffled, seed=3)
    assert stratified_split(items, seed=3) != stratified_split(items, seed=4)


def test_class_split_does_not_depend_on_other_classes():
    few = stratified_split(_items(classes=("a",)), seed=1)
    more = stratified_split(_items(classes=("a", "z")), seed=1)
    for split in few:
        assert few[split] == [pair for pair in more[split] if pair[1] == "a"]


def test_small_classes_and_zero_ratios():
    parts = stratified_split(_items(per_class=3), seed=0)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [6, 0, 3]
    parts = stratified_split(_items(per_class=5), seed=0, ratios=(0.2, 0.0, 0.8))
    assert [len(parts[s]) for s in ("train", "val", "test")] == [3, 0, 12]
    assert len(stratified_split(_items(), ratios=(1, 0, 0))["train"]) == 30


def test_duplicate_keys_are_refused():
    with pytest.raises(ValueError, match="share the key"):
        stratified_split([("x.jpg", "a"), ("x.jpg", "a")])


def test_read_split_file(tmp_path):
    path = tmp_path / "uc_merced-train.txt"
    path.write_text("agricultural00.tif\n\n  beach01.tif \nImages/beach/beach02.tif\nagricultural00.tif\n")
    assert read_split_file(path) == ["agricultural00.tif", "beach01.tif", "beach02.tif"]
    path.write_text("AnnualCrop_1.jpg\nForest_2.jpg\n")
    assert read_split_file(path, suffix=".tif") == ["AnnualCrop_1.tif", "Forest_2.tif"]
    with pytest.raises(DatasetNotFoundError, match="nope.txt"):
        read_split_file(tmp_path / "nope.txt")
    assert find_split_file([tmp_path / "x", tmp_path], path.name) == path
    assert find_split_file([tmp_path / "x"], path.name) is None
    path.write_bytes(b"beach01.tif\n\x89PNG\r\n\x1a\n")  # the wrong file: an image
    with pytest.raises(RecordError, match=r"uc_merced-train.txt: record 'line 2': not UTF-8 text \(byte 0x89\)"):
        read_split_file(path)


def test_select_by_name():
    chosen, missing = select_by_name(
        ["a/1.jpg", "a/2.jpg", "b/3.jpg"], ["3.jpg", "1.jpg", "9.jpg"], lambda p: p.split("/")[-1]
    )
    assert chosen == ["a/1.jpg", "b/3.jpg"]
    assert missing == ["9.jpg"]
