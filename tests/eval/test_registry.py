"""The benchmark registry: coverage of every loader, lookups, suites, --root parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerith.data import list_datasets
from aerith.eval.benchmarks import BENCHMARKS, REPORTED, SUITES, get_benchmark, get_suite
from aerith.eval.commands import parse_roots
from aerith.eval.runner import sample_id
from aerith.data.sample import Sample


def test_every_dataset_has_a_benchmark():
    covered = {b.dataset for b in BENCHMARKS.values()}
    assert set(list_datasets()) <= covered


def test_several_views_and_tasks():
    assert {"rsvqa-hr", "rsvqa-hr-phili", "rsieval-vqa", "rsieval-cap"} <= set(BENCHMARKS)
    assert [get_benchmark(f"synthrs-{t}").task for t in ("cls", "vqa", "cap", "vg")] == ["cls", "vqa", "cap", "vg"]
    assert get_benchmark("rsvqa-hr-phili").split == "test_phili"
    for b in BENCHMARKS.values():
        assert b.name and b.protocol and b.split


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(KeyError, match="dior-rsvg"):
        get_benchmark("dior-rsvgg")
    with pytest.raises(KeyError, match="seed"):
        get_suite("best")


def test_seed_suite_is_the_seed_table():
    assert SUITES["seed"] == ["aid", "whu-rs19", "eurosat", "nwpu-resisc45", "ucm", "rsvg", "dior-rsvg", "rsvqa-lr"]
    assert all(name in REPORTED for name in SUITES["seed"])


def test_sample_ids_are_stable():
    s = Sample(image=Path("x.jpg"), task="vqa", prompt="q?", targets=("yes",), meta={"question_id": 17})
    assert sample_id("rsvqa-lr", "test", 3, s) == "rsvqa-lr/test/3:17"
    pair = Sample(image=Path("x.png"), task="vqa", prompt="q?", targets=("yes",), meta={"filename": "P1.png", "pair": 2})
    assert sample_id("rsieval-vqa", "test", 0, pair) == "rsieval-vqa/test/0:P1.png#2"
    assert sample_id("x", "test", 5, Sample(image=Path("y.jpg"), task="cap", targets=("c",))) == "x/test/5"


def test_parse_roots():
    assert parse_roots(["data/aid"], "aid") == {"aid": Path("data/aid")}
    assert parse_roots(["ucm=/d/ucm", "DIOR-RSVG=/d/dior"], None) == {"ucm": Path("/d/ucm"), "dior-rsvg": Path("/d/dior")}
    assert parse_roots(["/data/a=b"], "aid") == {"aid": Path("/data/a=b")}  # '=' in a folder name
    with pytest.raises(ValueError, match="NAME=DIR"):
        parse_roots(["/d/ucm"], None)
    with pytest.raises(ValueError, match="twice"):
        parse_roots(["ucm=/a", "ucm=/b"], None)
