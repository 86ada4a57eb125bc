"""A scan in --out is resumed only by the same model, weights and settings, and a damaged journal is named."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import rasterio
import torch

from aerith.geo import ScanError, scan
from aerith.geo.journal import JOURNAL_DIR

from .rasters import write_geotiff

CAP = dict(task="cap", tile=64, overlap=0.0, batch_size=2)


class TorchDouble:
    """A model with torch weights seeded like a preset (same name for every seed); stops at a given call."""

    name = "aerith-tiny"
    is_random_init = True

    def __init__(self, seed: int, interrupt_at_call: int | None = None) -> None:
        torch.manual_seed(seed)
        self.model = torch.nn.Linear(4, 4)
        self.interrupt_at_call = interrupt_at_call
        self.calls = 0

    def generate(self, images, prompts, **kwargs):
        self.calls += 1
        if self.interrupt_at_call is not None and self.calls >= self.interrupt_at_call:
            raise KeyboardInterrupt
        return ["a caption"] * len(images)


class FolderDouble(TorchDouble):
    """A model loaded from a saved folder: the facade is named by the folder."""

    def __init__(self, folder, interrupt_at_call: int | None = None) -> None:
        super().__init__(0, interrupt_at_call)
        self.name = str(folder)


@pytest.fixture()
def raster(tmp_path):
    data = np.random.default_rng(0).integers(1, 255, (3, 128, 128), dtype=np.uint8)
    return write_geotiff(tmp_path / "r.tif", data)


def test_a_scan_interrupted_under_one_seed_is_refused_under_another(raster, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        scan(TorchDouble(seed=0, interrupt_at_call=2), raster, out=tmp_path / "s", **CAP)
    other = TorchDouble(seed=1)
    with pytest.raises(ScanError, match=r"model files is weights in memory \(sha256 \w+\) there, weights in memory \(sha256 \w+\) here"):
        scan(other, raster, out=tmp_path / "s", **CAP)
    assert other.calls == 0
    same = TorchDouble(seed=0)
    result = scan(same, raster, out=tmp_path / "s", **CAP)
    assert result.tiles["run_now"] == 2 and same.calls == 1
    assert result.manifest["model"]["fingerprint"]["in_memory"] is True


def test_a_folder_named_like_the_preset_does_not_stand_for_its_weights(raster, tmp_path, monkeypatch):
    (tmp_path / "aerith-tiny").mkdir()
    (tmp_path / "aerith-tiny" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    scan(TorchDouble(seed=0), raster, out=tmp_path / "s", **CAP)
    with pytest.raises(ScanError, match="model files is"):
        scan(TorchDouble(seed=1), raster, out=tmp_path / "s", **CAP)


def test_a_model_folder_retrained_in_place_is_refused(raster, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "aerith"}')
    (folder / "model.safetensors").write_bytes(b"weights of the first training")
    with pytest.raises(KeyboardInterrupt):
        scan(FolderDouble(folder, interrupt_at_call=2), raster, out=tmp_path / "s", **CAP)
    (folder / "model.safetensors").write_bytes(b"weights of the second training")
    with pytest.raises(ScanError, match=rf"model files is {folder.resolve()} \(model files sha256 \w+\) there, .* here"):
        scan(FolderDouble(folder), raster, out=tmp_path / "s", **CAP)


def test_an_explicit_model_fingerprint_is_compared(raster, tmp_path):
    scan(TorchDouble(seed=0), raster, out=tmp_path / "s", model_fingerprint={"preset": "aerith-tiny", "seed": 0}, **CAP)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["model"]["fingerprint"] == {"preset": "aerith-tiny", "seed": 0}
    with pytest.raises(ScanError, match=r"preset aerith-tiny \(seed 0\) there, preset aerith-tiny \(seed 1\) here"):
        scan(TorchDouble(seed=0), raster, out=tmp_path / "s", model_fingerprint={"preset": "aerith-tiny", "seed": 1}, **CAP)


def test_a_paletted_raster_scanned_by_default_is_refused_with_bands_0(tmp_path):
    index = np.random.default_rng(0).integers(1, 5, (128, 128), dtype=np.uint8)
    path = write_geotiff(tmp_path / "pal.tif", index[None], nodata=None, photometric="palette")
    with rasterio.open(path, "r+") as ds:
        ds.write_colormap(1, {0: (0, 0, 0, 255), 1: (255, 0, 0, 255), 2: (0, 255, 0, 255), 3: (0, 0, 255, 255), 4: (255, 255, 0, 255)})
    with pytest.raises(KeyboardInterrupt):
        scan(TorchDouble(0, interrupt_at_call=2), path, out=tmp_path / "s", **CAP)  # colours from the palette
    with pytest.raises(ScanError, match=r"--bands is 'default' there, \[0\] here"):
        scan(TorchDouble(0), path, out=tmp_path / "s", bands=(0,), **CAP)  # raw indices as grey


def test_a_damaged_block_names_the_file_and_tile_and_keeps_finished_tiles(tmp_path):
    data = np.random.default_rng(0).integers(1, 255, (3, 256, 256), dtype=np.uint8)
    path = write_geotiff(tmp_path / "r.tif", data)  # deflate, 64 px blocks
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 64)  # tile 5 of 4 x 4 no longer inflates
    with pytest.raises(ScanError, match=r"r\.tif: cannot read tile 5 \(pixels x 64-128, y 64-128\): .*truncated or damaged"):
        scan(TorchDouble(0), path, out=tmp_path / "s", **CAP)
    part = next((tmp_path / "s" / JOURNAL_DIR).iterdir())
    assert [json.loads(line).get("tile") for line in part.read_text().splitlines()[2:]] == [0, 1, 2, 3]


def test_an_out_that_cannot_be_made_is_a_scan_error_naming_it(raster, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ScanError, match=r"--out .*a-file/out: cannot write there \(Not a directory\)"):
        scan(TorchDouble(0), raster, out=blocker / "out", **CAP)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: r.pop("tile"), "line 3 has no 'tile' field"),
        (lambda r: r.pop("status"), "line 3 has no 'status' field"),
        (lambda r: r.update(tile=99), "line 3 has field 'tile' 99, not a tile number (0-3)"),
        (lambda r: r.update(status="fine"), "line 3 has field 'status' 'fine', not one of done, nodata, empty"),
        (lambda r: r.pop("answer"), "line 3 is a done tile with no 'answer' text"),
    ],
)
def test_a_journal_record_without_its_fields_is_named_by_file_line_and_field(raster, tmp_path, damage, message):
    from typer.testing import CliRunner

    from aerith.cli import app

    scan(TorchDouble(0), raster, out=tmp_path / "s", model_fingerprint={"preset": "aerith-tiny", "seed": 0}, **CAP)
    part = next((tmp_path / "s" / JOURNAL_DIR).iterdir())
    lines = part.read_text().splitlines()
    record = json.loads(lines[2])
    damage(record)
    lines[2] = json.dumps(record)
    part.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScanError, match=rf"{part.name}: {re.escape(message)}; the journal is damaged: delete that line"):
        scan(TorchDouble(0), raster, out=tmp_path / "s", model_fingerprint={"preset": "aerith-tiny", "seed": 0}, **CAP)
    args = ["scan", "aerith-tiny", str(raster), "--out", str(tmp_path / "s"), "--task", "cap", "--tile", "64",
            "--overlap", "0", "--batch-size", "2", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and f"\nerror: {part}: {message};" in result.output, result.output
