import numpy as np
import pytest
import tifffile

from aerith.data import DataError, RecordError, load_dataset
from aerith.data.datasets.eurosat import BAND_NAMES, EuroSAT, EuroSATMS
from aerith.imageio import load_rgb
from tests.fakes.eurosat.data import CLASSES, PER_CLASS
from tests.fakes.eurosat.data import write_fake as write_rgb
from tests.fakes.eurosat_ms.data import LAYOUT
from tests.fakes.eurosat_ms.data import write_fake as write_ms


def test_rgb_counts_classes_labels(tmp_path):
    root = write_rgb(tmp_path)
    parts = [EuroSAT(root, s) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(CLASSES) * PER_CLASS
    assert EuroSAT.classes == CLASSES
    assert all(s.targets == (CLASSES[s.meta["label"]],) and "bands" not in s.meta for p in parts for s in p)


def test_rgb_newer_zip_layout(tmp_path):
    root = write_rgb(tmp_path)
    (root / "2750").rename(root / "EuroSAT_RGB")
    assert len(load_dataset("eurosat", root, ratios=(1, 0, 0))) == 30


def test_ms_counts_and_band_meta(tmp_path):
    root = write_ms(tmp_path)
    ds = EuroSATMS(root, ratios=(1, 0, 0))
    assert len(ds) == 30 and EuroSATMS.classes == CLASSES
    assert all(s.meta["bands"] == (3, 2, 1) and s.meta["band_names"] == BAND_NAMES for s in ds)
    assert [BAND_NAMES[i] for i in ds[0].meta["bands"]] == ["B04", "B03", "B02"] and BAND_NAMES[-1] == "B8A"


def test_ms_band_choice_gives_true_colour(tmp_path):
    root = write_ms(tmp_path)
    for sample in EuroSATMS(root, ratios=(1, 0, 0))[:3]:  # pixel-interleaved and band-planar files
        rgb = np.asarray(load_rgb(sample.image, bands=sample.meta["bands"])).astype(int)
        red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        assert (np.diff(red, axis=1) >= 0).all() and red[:, -1].mean() > red[:, 0].mean()  # B04 rises with x
        assert (np.diff(red, axis=0) == 0).all()
        assert (np.diff(green, axis=0) >= 0).all() and (np.diff(green, axis=1) == 0).all()  # B03 rises with y
        assert blue[0, 0] != blue[0, 1] and blue[0, 0] == blue[1, 1]  # B02 checkerboard
        # B8A (stored last) falls with x: picking it as band 8 would show here
        assert (np.diff(np.asarray(load_rgb(sample.image, bands=(12,)))[..., 0].astype(int), axis=1) <= 0).all()


def test_ms_split_files_name_jpg(tmp_path):
    root = write_ms(tmp_path, split_files=True)
    assert "Forest_2.jpg" in (root / "eurosat-val.txt").read_text()
    val = EuroSATMS(root, "val")
    assert len(val) == 10 and all(s.image.name.endswith("_2.tif") for s in val)


def test_ms_newer_zip_layout_and_same_split_as_rgb(tmp_path):
    root = write_ms(tmp_path / "ms")
    (root / LAYOUT).rename(root / "EuroSAT_MS")
    rgb_root = write_rgb(tmp_path / "rgb")
    ms = {s.image.stem for s in EuroSATMS(root, "test", seed=4)}
    rgb = {s.image.stem for s in EuroSAT(rgb_root, "test", seed=4)}
    assert ms == rgb and len(ms) == 10


def test_wrong_copy_is_named(tmp_path):
    ms_root = write_ms(tmp_path / "ms")
    with pytest.raises(DataError, match="eurosat-ms"):
        EuroSAT(ms_root / LAYOUT)
    rgb_root = write_rgb(tmp_path / "rgb")
    with pytest.raises(DataError, match="13"):
        EuroSATMS(rgb_root / "2750")


def test_verify_images_checks_band_count(tmp_path):
    root = write_ms(tmp_path)
    bad = root / LAYOUT / "River" / "River_2.tif"
    tifffile.imwrite(bad, np.zeros((16, 16, 3), np.uint16), photometric="rgb")
    assert len(EuroSATMS(root, ratios=(1, 0, 0))) == 30
    with pytest.raises(RecordError, match="River_2.tif"):
        EuroSATMS(root, ratios=(1, 0, 0), verify_images=True)


def test_rgb_loader_on_the_13_band_copy_points_to_eurosat_ms(tmp_path):
    ms = write_ms(tmp_path / "ms")
    for root in (ms, ms / "ds", ms / "ds" / "images"):  # the download folder, or a folder on the way
        with pytest.raises(DataError, match=r"holds the 13-band EuroSAT-MS copy .*load it with 'eurosat-ms'"):
            load_dataset("eurosat", root)
    with pytest.raises(DataError, match=r"has 13 bands; the RGB EuroSAT loader expects 3-band images .*'eurosat-ms'"):
        load_dataset("eurosat", ms / LAYOUT)  # the class folders' parent itself
    rgb = write_rgb(tmp_path / "rgb")
    with pytest.raises(DataError, match=r"holds the RGB EuroSAT copy \(2750/\): load it with 'eurosat'"):
        load_dataset("eurosat-ms", rgb)
