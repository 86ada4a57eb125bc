"""Weighted, seeded, epoch-able mixture of datasets."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from aerith.data.mixture import Mixture

DATASETS = {"big": [f"b{i}" for i in range(300)], "small": [f"s{i}" for i in range(10)], "off": ["o0"]}


def test_order_is_a_pure_function_of_seed_and_epoch() -> None:
    a = Mixture(DATASETS, {"big": 1, "small": 1, "off": 0}, seed=3)
    b = Mixture(DATASETS, {"big": 1, "small": 1, "off": 0}, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(Mixture(DATASETS, {"big": 1, "small": 1, "off": 0}, seed=4)) != first


def test_weights_set_the_shares_and_zero_leaves_a_dataset_out() -> None:
    mix = Mixture(DATASETS, {"big": 3, "small": 1, "off": 0}, seed=0, length=4000)
    counts = mix.counts()
    assert counts["off"] == 0 and sum(counts.values()) == 4000
    assert counts["big"] / 4000 == pytest.approx(0.75, abs=0.03)
    names = Counter(name for name, _ in mix)
    assert names == Counter({k: v for k, v in counts.items() if v})
    assert mix.probabilities == {"big": 0.75, "small": 0.25}


def test_samples_without_replacement_within_a_dataset() -> None:
    mix = Mixture(DATASETS, {"big": 1, "small": 1, "off": 0}, seed=1, length=200)
    small = [s for name, s in mix if name == "small"]
    assert len(small) > 20
    for start in range(0, len(small) - len(small) % 10, 10):  # every block of 10 is one permutation
        assert sorted(small[start : start + 10]) == sorted(DATASETS["small"])
    big = [s for name, s in mix if name == "big"]
    assert len(big) == len(set(big))  # fewer than 300 drawn: no repeats


def test_default_length_and_indexing() -> None:
    mix = Mixture(DATASETS, {"big": 1, "small": 2, "off": 0})
    assert len(mix) == 310
    name, sample = mix[-1]
    assert (name, sample) == mix[len(mix) - 1]
    assert mix[:3] == [mix[0], mix[1], mix[2]]
    assert mix.locate(0)[0] in ("big", "small")
    with pytest.raises(IndexError):
        mix[310]
    assert "small=2" in repr(mix)


def test_numpy_weights_are_accepted() -> None:
    mix = Mixture({"a": [1, 2]}, {"a": np.float32(0.5)})
    assert sorted(s for _, s in mix) == [1, 2]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"big": -1, "small": 1, "off": 0}, "weight of dataset 'big'"),
        ({"big": float("nan"), "small": 1, "off": 0}, "weight of dataset 'big'"),
        ({"big": "1", "small": 1, "off": 0}, "weight of dataset 'big'"),
        ({"big": 0, "small": 0, "off": 0}, "all weights are zero"),
        ({"big": 1, "small": 1, "off": 0, "typo": 1}, "unknown dataset 'typo'"),
        ({"big": 1, "small": 1}, "dataset 'off' has no weight"),
    ],
)
def test_bad_weights_name_the_problem(weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Mixture(DATASETS, weights)


def test_other_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'empty' is empty"):
        Mixture({"empty": []}, {"empty": 1})
    with pytest.raises(ValueError, match="at least one dataset"):
        Mixture({}, {})
    with pytest.raises(ValueError, match="length"):
        Mixture(DATASETS, {"big": 1, "small": 1, "off": 0}, length=0)
    with pytest.raises(ValueError, match="epoch"):
        Mixture(DATASETS, {"big": 1, "small": 1, "off": 0}).set_epoch(-1)
