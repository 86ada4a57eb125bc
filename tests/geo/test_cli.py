"""`aerith scan` from the command line: the real aerith-tiny end to end, and bad input."""

from __future__ import annotations

import json

import pytest
import rasterio
from pyogrio.raw import read as read_vector
from typer.testing import CliRunner

from aerith.cli import app
from aerith.data.synthrs import CLASS_NAMES

runner = CliRunner()


@pytest.mark.parametrize(
    "task, extra",
    [("vg", ["--query", "storage tank"]), ("cls", ["--classes", ",".join(CLASS_NAMES)])],
)
def test_aerith_tiny_scans_a_geotiff_end_to_end(mosaic, tmp_path, task, extra, monkeypatch):
    out = tmp_path / task
    args = ["scan", "aerith-tiny", str(mosaic.path), "--task", task, *extra, "--tile", "192", "--overlap", "0",
            "--batch-size", "4", "--max-new-tokens", "8", "--out", str(out), "--no-progress"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output  # labelled as noise
    assert "scanned 4 of 4 tiles" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == {"name": "aerith-tiny", "random_weights": True, "fingerprint": {"preset": "aerith-tiny", "seed": 0}}
    assert manifest["tiles"]["done"] == 4 and manifest["status"] == "complete"
    assert (out / "quicklook.png").stat().st_size > 0
    lines = (out / "journal" / "part-000-of-001.jsonl").read_text().splitlines()
    answers = [entry for entry in map(json.loads, lines) if "status" in entry]
    assert len(answers) == 4 and all(a["status"] == "done" and isinstance(a["answer"], str) for a in answers)
    layer = "detections" if task == "vg" else "tiles"
    meta, _, _, _ = read_vector(out / f"{layer}.gpkg")
    assert meta["crs"] == "EPSG:32633"
    if task == "cls":
        with rasterio.open(out / "classmap.tif") as cm:
            assert (cm.width, cm.height) == (2, 2)
    # run again: every tile is in the journal, so nothing is asked of the model and the outputs are rewritten
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "0 run now" in again.output
    # another seed is another model, though its name is the same: refused, not mixed into these answers,
    # and before that model loads
    import aerith.infer.load

    def not_loaded(*a, **k):
        raise AssertionError("the model was loaded before the journal was checked")

    monkeypatch.setattr(aerith.infer.load, "load_vlm", not_loaded)
    other = runner.invoke(app, [*args, "--seed", "1"])
    assert other.exit_code == 2 and "Traceback" not in other.output
    assert "model files is preset aerith-tiny (seed 0) there, preset aerith-tiny (seed 1) here" in other.output


def test_bad_input_exits_2_with_a_message_naming_it(mosaic, tmp_path):
    text = tmp_path / "readme.tif"
    text.write_text("this is text, not a raster")
    cases = [
        ([str(tmp_path / "nope.tif"), "--task", "cap"], "nope.tif: raster file not found"),
        ([str(tmp_path), "--task", "cap"], f"{tmp_path} is a folder; give the raster file"),
        ([str(text), "--task", "cap"], "readme.tif: not a raster GDAL can read"),
        ([str(mosaic.path), "--task", "cap", "--bands", "2,1,3"], "band index 3 out of range: the raster has 3 band(s)"),
        ([str(mosaic.path), "--task", "cap", "--tile", "1024"], "tile 1024 px is larger than the raster (384 x 384 px)"),
        ([str(mosaic.path), "--task", "cls"], "needs --classes"),
        ([str(mosaic.path), "--task", "vg"], "needs --query"),
        ([str(mosaic.path), "--task", "cap", "--bands", "red"], "--bands takes comma-separated"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["scan", "aerith-tiny", *args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert not (tmp_path / "out").exists()  # refused before anything was written or any model loaded


def test_a_truncated_raster_or_an_unwritable_out_exits_2_before_the_model_loads(mosaic, tmp_path, monkeypatch):
    import aerith.infer.load

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(aerith.infer.load, "load_vlm", no_model)
    data = mosaic.path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])  # an interrupted copy
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        ([str(cut), "--out", str(tmp_path / "out")], "cut.tif: cannot read the last pixel (pixels x 383-384, y 383-384)"),
        ([str(mosaic.path), "--out", str(blocker / "out")], f"--out {blocker / 'out'}: cannot write there (Not a directory)"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["scan", "aerith-tiny", *args, "--task", "cap", "--tile", "128"])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("error: ") and message in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
