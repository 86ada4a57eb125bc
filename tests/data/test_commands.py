"""`aerith data convert | stats | show` end to end over the fake datasets, and their library functions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from aerith.cli import app
from aerith.data import DatasetNotFoundError, load_dataset
from aerith.data.commands import convert, render_sample, show, stats
from aerith.data.interop import from_lhrs, from_llava
from aerith.data.sample import Sample
from tests.fakes.dior_rsvg.data import write_fake as fake_dior_rsvg
from tests.fakes.fmow.data import write_fake as fake_fmow
from tests.fakes.rsicd.data import write_fake as fake_rsicd
from tests.fakes.rsieval.data import write_fake as fake_rsieval
from tests.fakes.rsvqa_lr.data import write_fake as fake_rsvqa_lr
from tests.fakes.ucm.data import write_fake as fake_ucm

runner = CliRunner()


def _cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("fmt", ["llava", "lhrs"])
def test_convert_grounding_reads_back_to_the_same_boxes(tmp_path: Path, fmt: str) -> None:
    root = fake_dior_rsvg(tmp_path / "dior")
    out = tmp_path / "out" / f"dior.{fmt}.json"
    result = _cli("data", "convert", "dior-rsvg", str(root), "--split", "train", "--out", str(out), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    original = load_dataset("dior-rsvg", root, split="train")
    back = (from_llava if fmt == "llava" else from_lhrs)(out, root)
    assert len(back) == len(original)
    for got, want in zip(back, original, strict=True):
        assert (got.task, got.image, got.prompt) == ("vg", want.image, want.prompt)
        w, _ = want.meta.get("image_size") or Image.open(want.image).size
        assert got.box == pytest.approx(want.box, abs=w / 1000)


def test_convert_vqa_writes_one_instruction_per_question(tmp_path: Path) -> None:
    root = fake_rsvqa_lr(tmp_path / "rsvqa")
    out = tmp_path / "rsvqa.json"
    assert _cli("data", "convert", "rsvqa-lr", str(root), "--split", "test", "--out", str(out)).exit_code == 0
    records = json.loads(out.read_text())
    original = load_dataset("rsvqa-lr", root, split="test")
    assert len(records) == len(original)
    for record, sample in zip(records, original, strict=True):
        human, gpt = record["conversations"]
        assert human["value"].startswith("<image>\n[VQA] ") and sample.prompt in human["value"]
        assert gpt["value"] == sample.targets[0]
        assert (root / record["image"]).resolve() == sample.image.resolve()
    # same seed, same file; another seed, other phrasings
    assert convert("rsvqa-lr", root, "test", tmp_path / "again.json").read_text() == out.read_text()
    other = json.loads(convert("rsvqa-lr", root, "test", tmp_path / "other.json", seed=1).read_text())
    assert [r["conversations"][0]["value"] for r in other] != [r["conversations"][0]["value"] for r in records]


def test_convert_errors_exit_2(tmp_path: Path) -> None:
    root = fake_rsvqa_lr(tmp_path / "rsvqa")
    bad_format = _cli("data", "convert", "rsvqa-lr", str(root), "--out", str(tmp_path / "x.json"), "--format", "csv")
    assert bad_format.exit_code == 2 and "unknown format 'csv'" in bad_format.output
    unknown = _cli("data", "convert", "nope", str(root), "--out", str(tmp_path / "x.json"))
    assert unknown.exit_code == 2 and "unknown dataset 'nope'" in unknown.output
    missing = _cli("data", "convert", "rsvqa-lr", str(tmp_path / "absent"), "--out", str(tmp_path / "x.json"))
    assert missing.exit_code == 2 and "absent" in missing.output
    assert not (tmp_path / "x.json").exists()
    (tmp_path / "folder.json").mkdir()
    into_folder = _cli("data", "convert", "rsvqa-lr", str(root), "--out", str(tmp_path / "folder.json"))
    assert into_folder.exit_code == 2 and "is a folder, not a file" in into_folder.output


def test_convert_and_show_never_replace_a_file_unasked_nor_one_of_the_dataset(tmp_path: Path) -> None:
    from aerith.data.synthrs import generate

    root = tmp_path / "syn"
    generate(root, n=12, size=32, seed=0)
    truth = (root / "scene_graphs.json").read_bytes()
    for command, out in (("convert", root / "scene_graphs.json"), ("show", root / "uc_merced-train.txt")):
        before = out.read_bytes()
        result = _cli("data", command, "synthrs", str(root), "--out", str(out), "--overwrite")
        assert result.exit_code == 2 and "is a file of the dataset" in result.output, result.output
        assert out.read_bytes() == before
    assert (root / "scene_graphs.json").read_bytes() == truth
    mine = tmp_path / "mine.json"
    mine.write_text("my notes")
    result = _cli("data", "convert", "synthrs", str(root), "--out", str(mine))
    assert result.exit_code == 2 and "exists; pass --overwrite" in result.output and mine.read_text() == "my notes"
    assert _cli("data", "convert", "synthrs", str(root), "--out", str(mine), "--overwrite").exit_code == 0
    assert json.loads(mine.read_text())
    picture = tmp_path / "mine.png"
    picture.write_bytes(b"keep")
    result = _cli("data", "show", "synthrs", str(root), "--out", str(picture))
    assert result.exit_code == 2 and picture.read_bytes() == b"keep"
    assert _cli("data", "show", "synthrs", str(root), "--out", str(picture), "--overwrite").exit_code == 0
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_stats_counts_classes_types_and_captions(tmp_path: Path) -> None:
    ucm = stats("ucm", fake_ucm(tmp_path / "ucm"))
    train = ucm["splits"]["train"]
    assert train["tasks"] == {"cls": train["samples"]} and len(train["classes"]) == 21
    assert sum(s["samples"] for s in ucm["splits"].values()) == 21 * 4
    vqa = stats("rsvqa-lr", fake_rsvqa_lr(tmp_path / "rsvqa"))
    assert set(vqa["splits"]["train"]["question_types"]) == {"presence", "comp", "count", "rural_urban"}
    caps = stats("rsicd", fake_rsicd(tmp_path / "rsicd"))["splits"]["train"]["captions"]
    assert caps["total"] == 15 and caps["unique"] < caps["total"]  # padded to five with duplicates


def test_stats_reports_missing_splits_and_skipped_records(tmp_path: Path) -> None:
    root = fake_rsicd(tmp_path / "rsicd")
    ann = root / "RSICD" / "dataset_rsicd.json"
    data = json.loads(ann.read_text())
    del data["images"][0]["sentences"]  # a train record
    ann.write_text(json.dumps(data))
    result = stats("rsicd", root)
    # the loader checks a record before reading its split, so every split skips it
    assert result["splits"]["train"]["skipped"] == 1 and result["warnings"] == len(result["splits"])
    assert any("train" in p and "skipped 1 bad record" in p for p in result["problems"])

    vqa_root = fake_rsvqa_lr(tmp_path / "rsvqa")
    (vqa_root / "RSVQA_LR" / "LR_split_val_questions.json").unlink()
    vqa = stats("rsvqa-lr", vqa_root)
    assert vqa["missing_splits"] == ["val"] and "val" not in vqa["splits"]
    assert any(p.startswith("val: split not found") for p in vqa["problems"])

    as_json = _cli("data", "stats", "rsvqa-lr", str(vqa_root), "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.output)["missing_splits"] == ["val"]
    table = _cli("data", "stats", "rsvqa-lr", str(vqa_root))
    assert table.exit_code == 0
    assert "presence" in table.output and "missing" in table.output and "problem:" in table.output


def test_stats_counts_the_loaders_own_warnings(tmp_path: Path) -> None:
    root = fake_fmow(tmp_path)
    result = stats("fmow", root, options={"labels": str(tmp_path / "groundtruth")})
    assert result["warnings"] >= 1
    assert any(p.startswith("test: ") and "left out 2 'false_detection' image(s)" in p for p in result["problems"])


def test_on_bad_is_its_own_argument_not_an_option(tmp_path: Path) -> None:
    root = fake_rsicd(tmp_path / "rsicd")
    given = _cli("data", "convert", "rsicd", str(root), "--out", str(tmp_path / "o.json"), "--option", "on_bad=skip")
    assert given.exit_code == 2 and "'on_bad' is its own argument (--on-bad" in given.output
    assert not (tmp_path / "o.json").exists()
    with pytest.raises(ValueError, match="'on_bad' is always 'skip' here"):
        stats("rsicd", root, options={"on_bad": "raise"})


def test_show_writes_a_png_with_the_red_box(tmp_path: Path) -> None:
    root = fake_dior_rsvg(tmp_path / "dior")
    out = tmp_path / "pics" / "vg.png"
    result = _cli("data", "show", "dior-rsvg", str(root), "--split", "train", "--index", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB"))
    sample = load_dataset("dior-rsvg", root, split="train")[0]
    scale, left = 256 / 32, (320 - 256) // 2  # the 32 px fake is enlarged to 256 px, centred on a 320 px canvas
    red = np.all(pixels == (255, 0, 0), axis=2)
    ys, xs = np.nonzero(red)
    x1, y1, x2, y2 = sample.box
    assert xs.min() == pytest.approx(left + x1 * scale, abs=2) and xs.max() == pytest.approx(left + x2 * scale, abs=3)
    assert ys.min() == pytest.approx(y1 * scale, abs=2) and ys.max() == pytest.approx(y2 * scale, abs=3)
    assert pixels.shape[0] > 256  # text block under the image
    assert sorted(p.name for p in out.parent.iterdir()) == ["vg.png"]  # no temp file left


def test_show_every_task_and_bad_index(tmp_path: Path) -> None:
    for name, fake in (("rsvqa-lr", fake_rsvqa_lr), ("rsicd", fake_rsicd), ("ucm", fake_ucm)):
        path = show(name, fake(tmp_path / name), "test", -1, tmp_path / f"{name}.png")
        with Image.open(path) as im:
            assert im.size[0] >= 320
    bad = _cli("data", "show", "ucm", str(tmp_path / "ucm"), "--index", "999", "--out", str(tmp_path / "x.png"))
    assert bad.exit_code == 2 and "index 999 out of range" in bad.output


def test_show_and_convert_default_to_the_datasets_split(tmp_path: Path) -> None:
    root = fake_rsieval(tmp_path / "rsieval")  # test only
    shown = _cli("data", "show", "rsieval", str(root), "--out", str(tmp_path / "q.png"))
    assert shown.exit_code == 0 and (tmp_path / "q.png").is_file(), shown.output
    converted = _cli("data", "convert", "rsieval", str(root), "--out", str(tmp_path / "q.json"))
    assert converted.exit_code == 0 and len(json.loads((tmp_path / "q.json").read_text())) == 4, converted.output
    wrong = _cli("data", "show", "rsieval", str(root), "--split", "train", "--out", str(tmp_path / "x.png"))
    assert wrong.exit_code == 2 and "rsieval: unknown split 'train'; valid splits: test" in wrong.output


def test_render_sample_uses_the_sample_bands_and_keeps_large_images_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (2000, 1000), (0, 0, 255)).save(path)
    picture = render_sample(Sample(path, "cap", targets=("a blue sea.", "a blue sea.")))
    assert picture.size[0] == 1024 and picture.size[1] > 512
    assert tuple(np.asarray(picture)[10, 10]) == (0, 0, 255)
    grey = np.arange(64 * 64 * 5, dtype=np.uint16).reshape(64, 64, 5) % 4096
    tif = tmp_path / "ms.tif"
    import tifffile

    tifffile.imwrite(tif, grey)
    shown = render_sample(Sample(tif, "cls", targets=("River",), meta={"bands": (3, 2, 1)}))
    assert shown.size[0] >= 256


def test_convert_writes_image_paths_relative_to_a_root_given_with_tilde(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    fake_ucm(home / "ucm")
    elsewhere = tmp_path / "a" / "b" / "c"
    elsewhere.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    out = convert("ucm", "~/ucm", "test", tmp_path / "ucm.json")
    records = json.loads(out.read_text())
    assert records[0]["image"].startswith("UCMerced_LandUse/Images/"), records[0]["image"]
    back = from_llava(out, home / "ucm")
    assert [s.image.resolve() for s in back] == [s.image.resolve() for s in load_dataset("ucm", home / "ucm", "test")]


def test_stats_of_a_folder_holding_no_split_is_an_error_naming_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _cli("data", "stats", "ucm", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "expected the ucm class folders" in result.output, result.output
    with pytest.raises(DatasetNotFoundError, match="scene_graphs.json: not found"):
        stats("synthrs", tmp_path / "empty")
