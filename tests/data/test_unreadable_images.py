"""One mechanism for unreadable images: loaders, training sources, evaluation and the data commands count them."""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from aerith.cli import app
from aerith.data import RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.commands import stats
from tests.fakes.dior_rsvg.data import write_fake as fake_dior
from tests.fakes.rsvqa_lr.data import write_fake as fake_rsvqa_lr
from tests.fakes.ucm.data import write_fake as fake_ucm

runner = CliRunner()
ALL = (1, 0, 0)


def _break(path, how: str = "truncate") -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else b"not an image at all")


@pytest.fixture
def ucm(tmp_path):
    root = fake_ucm(tmp_path / "ucm")
    images = root / "UCMerced_LandUse" / "Images"
    _break(images / "beach" / "beach02.tif", "garbage")
    _break(images / "forest" / "forest01.tif")  # cut short: the header still opens
    return root


def test_on_bad_skip_covers_unreadable_images_in_every_loader(ucm, tmp_path):
    with pytest.warns(SkippedRecordsWarning, match=r"skipped 2 bad record.*beach02.tif") as caught:
        ds = load_dataset("ucm", ucm, ratios=ALL, on_bad="skip")
    assert len(ds) == 21 * 4 - 2 and set(ds.unreadable_images) == {
        ucm / "UCMerced_LandUse" / "Images" / "beach" / "beach02.tif",
        ucm / "UCMerced_LandUse" / "Images" / "forest" / "forest01.tif",
    }
    assert "truncated" in str(caught[0].message) or "truncated" in " ".join(ds.unreadable_images.values())
    assert len(load_dataset("ucm", ucm, ratios=ALL)) == 84  # on_bad="raise" does not open images at index time
    with pytest.raises(RecordError, match=r"beach02.tif: record 'beach02', field 'image': cannot read image header"):
        load_dataset("ucm", ucm, ratios=ALL, verify_images=True)
    # grounding: every object of an unreadable image is a counted bad record
    dior = fake_dior(tmp_path / "dior")
    _break(dior / "DIOR_RSVG" / "JPEGImages" / "00003.jpg")
    with pytest.warns(SkippedRecordsWarning, match=r"skipped 2 bad record.*00003.jpg: record 3, field 'image': (truncated|cannot read)"):
        assert [s.meta["object_index"] for s in load_dataset("dior-rsvg", dior, "train", on_bad="skip")] == [0, 2]


def test_training_sources_are_checked_before_the_model_loads(ucm):
    from aerith.train.config import DataSource
    from aerith.train.data import load_sources

    with pytest.raises(RecordError, match=r"beach02.tif: record 'beach02', field 'image'"):
        load_sources([DataSource("ucm", str(ucm), "train", options={"ratios": list(ALL)})])
    with pytest.warns(SkippedRecordsWarning, match="skipped 2 bad record"):
        (ds,) = load_sources([DataSource("ucm", str(ucm), "train", options={"ratios": list(ALL), "on_bad": "skip"})])
    assert len(ds) == 82


def test_an_unreadable_image_does_not_abort_an_evaluation(tmp_path):
    from aerith.eval.runner import evaluate

    root = fake_rsvqa_lr(tmp_path / "rsvqa")
    _break(root / "RSVQA_LR" / "Images_LR" / "4.tif", "garbage")  # one of the test split's two images

    class Yes:
        name = "yes-model"

        def generate(self, images, prompts, *, batch_size=16, **kwargs):
            return ["yes"] * len(prompts)

    result = evaluate(Yes(), "rsvqa-lr", root, tmp_path / "run", batch_size=2, progress=False)
    counts = result["counts"]
    n_bad = sum(1 for it in load_dataset("rsvqa-lr", root, "test") if it.image.name == "4.tif")
    assert n_bad > 0 and counts["unreadable"] == n_bad and counts["missing"] == n_bad
    assert counts["answered"] == counts["samples"] - n_bad > 0
    assert {u["image"].rsplit("/", 1)[-1] for u in result["unreadable_images"]} == {"4.tif"}
    assert "cannot read image" in result["unreadable_images"][0]["reason"]
    assert f"{n_bad} unreadable images (scored as missing)" in (tmp_path / "run" / "results.md").read_text()


def test_stats_reports_unreadable_images_as_problems(ucm):
    result = stats("ucm", ucm, options={"ratios": [0.5, 0.25, 0.25]})
    unreadable = sum(s["unreadable_images"] for s in result["splits"].values())
    assert unreadable == 2
    assert any("unreadable image(s), left out" in p and ".tif" in p for p in result["problems"])
    table = runner.invoke(app, ["data", "stats", "ucm", str(ucm)])
    assert table.exit_code == 0 and "unreadable image(s), left out" in table.output


def test_show_and_convert_skip_with_on_bad_and_take_loader_options(ucm, tmp_path):
    out = tmp_path / "x.png"
    failed = runner.invoke(app, ["data", "show", "ucm", str(ucm), "--out", str(out), "--option", "ratios=[1, 0, 0]", "--option", "verify_images=true"])
    assert failed.exit_code == 2 and "beach02.tif" in failed.output and "Traceback" not in failed.output
    shown = runner.invoke(
        app, ["data", "show", "ucm", str(ucm), "--out", str(out), "--on-bad", "skip", "--option", "ratios=[1, 0, 0]", "--index", "81"]
    )
    assert shown.exit_code == 0, shown.output
    assert "warning: ucm (train): skipped 2 bad record" in shown.output and out.is_file()
    beyond = runner.invoke(app, ["data", "show", "ucm", str(ucm), "--out", str(out), "--on-bad", "skip", "--option", "ratios=[1,0,0]", "--index", "82", "--overwrite"])
    assert beyond.exit_code == 2 and "index 82 out of range" in beyond.output and "82 samples" in beyond.output
    js = tmp_path / "x.json"
    converted = runner.invoke(app, ["data", "convert", "ucm", str(ucm), "--out", str(js), "--on-bad", "skip", "--option", "ratios=[1, 0, 0]"])
    assert converted.exit_code == 0 and len(json.loads(js.read_text())) == 82
    unknown = runner.invoke(app, ["data", "convert", "ucm", str(ucm), "--out", str(js), "--option", "colour=red", "--overwrite"])
    assert unknown.exit_code == 2 and "ucm has no loader option 'colour'; its options: on_bad, split_file, seed, ratios, verify_images" in unknown.output
    malformed = runner.invoke(app, ["data", "stats", "ucm", str(ucm), "--option", "ratios"])
    assert malformed.exit_code == 2 and "--option takes KEY=VALUE" in malformed.output
    bad_mode = runner.invoke(app, ["data", "show", "ucm", str(ucm), "--out", str(out), "--on-bad", "ignore", "--overwrite"])
    assert bad_mode.exit_code == 2 and "on_bad must be 'raise' or 'skip'" in bad_mode.output


def test_full_verification_decodes_what_the_header_check_cannot_see(tmp_path):
    import numpy as np
    import tifffile

    root = fake_ucm(tmp_path / "ucm")
    bad = root / "UCMerced_LandUse" / "Images" / "river" / "river03.tif"
    tifffile.imwrite(bad, np.full((16, 16, 3), 7, np.uint8), photometric="rgb", compression="zstd")
    with tifffile.TiffFile(bad) as tif:  # damage the compressed data, keep the header and the length
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    data = bytearray(bad.read_bytes())
    data[offset : offset + count] = b"\x00" * count
    bad.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_dataset("ucm", root, ratios=ALL, on_bad="skip")) == 84  # the header check passes it
    with pytest.warns(SkippedRecordsWarning, match=r"skipped 1 bad record.*river03.tif.*cannot read image"):
        assert len(load_dataset("ucm", root, ratios=ALL, on_bad="skip", verify_images="full")) == 83


def test_an_unreadable_image_leaves_a_blank_panel_in_the_grounding_overlay(tmp_path):
    from aerith.eval.runner import evaluate

    root = fake_dior(tmp_path / "dior")
    _break(root / "DIOR_RSVG" / "JPEGImages" / "00002.jpg", "garbage")

    class Box:
        name = "box-model"

        def generate(self, images, prompts, *, batch_size=16, **kwargs):
            return ["[100, 100, 300, 300]"] * len(prompts)

    result = evaluate(Box(), "dior-rsvg", root, tmp_path / "run", split="train", progress=False)
    assert result["counts"]["unreadable"] == 1 and result["counts"]["answered"] == result["counts"]["samples"] - 1
    assert "grounding.png" in result["files"] and (tmp_path / "run" / "grounding.png").stat().st_size > 0
