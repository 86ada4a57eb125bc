"""A JSON annotation file saved with a UTF-8 byte-order mark (Windows editors write one) reads as without it.

RSVQA's reader and the split-file reader already accepted one; the other JSON readers
refused the file as "not valid JSON (Unexpected UTF-8 BOM)".
"""

import codecs
from pathlib import Path

import pytest

from aerith.data import load_dataset
from aerith.data.interop import from_llava, to_llava, write_json
from aerith.data.instructions import to_instruction
from tests.fakes.fmow.data import write_fake as fake_fmow
from tests.fakes.rsicap.data import write_fake as fake_rsicap
from tests.fakes.rsicd.data import write_fake as fake_rsicd
from tests.fakes.rsieval.data import write_fake as fake_rsieval
from tests.fakes.vrsbench.data import write_fake as fake_vrsbench


def _add_bom(path: Path) -> None:
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())


@pytest.mark.parametrize(
    ("name", "fake", "relative", "kwargs"),
    [
        ("rsicd", fake_rsicd, "RSICD/dataset_rsicd.json", {"split": "train"}),
        ("rsicap", fake_rsicap, "dataset/RSICap/captions.json", {}),
        ("rsieval", fake_rsieval, "dataset/RSIEval/annotations.json", {}),
        ("vrsbench", fake_vrsbench, "VRSBench/VRSBench_EVAL_vqa.json", {"task": "vqa"}),
        ("fmow", fake_fmow, "fmow-rgb/val/dam/dam_12/dam_12_0_rgb.json", {"split": "val"}),
    ],
)
def test_annotation_json_with_a_bom(tmp_path, name, fake, relative, kwargs):
    fake(tmp_path)
    before = load_dataset(name, tmp_path, **kwargs)
    _add_bom(tmp_path / relative)
    after = load_dataset(name, tmp_path, **kwargs)
    assert list(after) == list(before) and len(after) > 0


def test_fmow_ground_truth_mapping_with_a_bom(tmp_path):
    fake_fmow(tmp_path)
    labels = tmp_path / "groundtruth"
    before = load_dataset("fmow", tmp_path, "test", labels=labels, on_bad="skip")
    _add_bom(labels / "test_gt_mapping.json")
    assert list(load_dataset("fmow", tmp_path, "test", labels=labels, on_bad="skip")) == list(before)


def test_llava_file_with_a_bom(tmp_path):
    fake_rsicd(tmp_path)
    ds = load_dataset("rsicd", tmp_path, "train")
    path = write_json(to_llava([to_instruction(s) for s in ds], image_base=tmp_path), tmp_path / "llava.json")
    _add_bom(path)
    assert len(from_llava(path, tmp_path)) == len(ds)
