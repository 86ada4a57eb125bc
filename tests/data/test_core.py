import warnings

import numpy as np
import pytest
from PIL import Image

from aerith.data import DatasetNotFoundError, ImageReadError, RecordError, Sample, SkippedRecordsWarning, list_datasets, load_dataset
from aerith.data.errors import BadRecords
from aerith.imageio import image_size, load_rgb


def test_sample_normalises_fields(tmp_path):
    s = Sample(image=str(tmp_path / "a.png"), task="vg", prompt="the ship", box=[1, 2, 3, 4])
    assert s.box == (1.0, 2.0, 3.0, 4.0)
    assert s.targets == ()
    with pytest.raises(ValueError, match="task"):
        Sample(image=tmp_path, task="detect")


def test_bad_records_raise_or_count():
    err = RecordError("ann.json", 7, "answer", "missing")
    assert "ann.json" in str(err) and "7" in str(err) and "answer" in str(err)
    with pytest.raises(RecordError):
        BadRecords("raise").handle(err)
    bad = BadRecords("skip", source="x")
    bad.handle(err)
    bad.handle(err)
    with pytest.warns(SkippedRecordsWarning, match="skipped 2"):
        bad.finish()


def test_unknown_dataset_lists_known(tmp_path):
    with pytest.raises(KeyError, match="ucm"):
        load_dataset("nope", tmp_path)
    from aerith.data.registry import get_dataset_class

    assert {"ucm", "aid", "eurosat-ms", "fmow", "vrsbench"} <= set(list_datasets())
    for name in list_datasets():  # every registered name imports and is its class's name
        assert get_dataset_class(name).name == name


def test_load_dataset_without_split_reads_the_datasets_default(tmp_path):
    from aerith.data.datasets.base import RSDataset
    from aerith.data.registry import get_dataset_class
    from tests.fakes.rsicap.data import write_fake as fake_rsicap
    from tests.fakes.rsieval.data import write_fake as fake_rsieval

    for name in list_datasets():
        cls = get_dataset_class(name)
        assert cls.default_split in cls.splits and cls.default_split == ("test" if name in ("rsieval", "vrsbench") else "train"), name
    rsieval = load_dataset("rsieval", fake_rsieval(tmp_path / "rsieval"))  # a benchmark: test only
    assert rsieval.split == "test" and len(rsieval) == 4
    rsicap = load_dataset("rsicap", fake_rsicap(tmp_path / "rsicap"))  # its training set: train only
    assert rsicap.split == "train" and len(rsicap) > 0
    with pytest.raises(ValueError, match=r"^rsieval: unknown split 'train'; valid splits: test \(default: test\)$"):
        load_dataset("rsieval", tmp_path / "rsieval", split="train")
    with pytest.raises(ValueError, match=r"^rsicap: unknown split 'val'; valid splits: train \(default: train\)$"):
        load_dataset("rsicap", tmp_path / "rsicap", "val")
    with pytest.raises(TypeError, match=r"TestOnly: default_split 'train' is not one of its splits \(test\)"):

        class TestOnly(RSDataset):  # a test-only dataset must say that test is its default
            splits = ("test",)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.fromarray(np.full((9, 7, 3), 100, np.uint8), "RGB"),
        lambda: Image.fromarray(np.full((9, 7), 100, np.uint8), "L"),
        lambda: Image.fromarray(np.full((9, 7, 4), 100, np.uint8), "RGBA"),
    ],
)
def test_load_rgb_modes(tmp_path, make):
    p = tmp_path / "img.png"
    make().save(p)
    im = load_rgb(p)
    assert im.mode == "RGB" and im.size == (7, 9)
    assert image_size(p) == (7, 9)


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "HSV", "1", "P"])
def test_a_pil_image_in_another_colour_space_reads_as_its_file_does(tmp_path, mode):
    red = Image.new("RGB", (6, 4), (255, 0, 0)).convert(mode)
    as_object = np.asarray(load_rgb(red))
    assert as_object.shape == (4, 6, 3)
    assert (as_object == np.asarray(red.convert("RGB"))).all()
    if mode in ("CMYK", "1", "P"):  # the modes a file on disk keeps
        path = tmp_path / ("red.jpg" if mode == "CMYK" else "red.png")
        red.save(path)
        assert (np.asarray(load_rgb(Image.open(path))) == np.asarray(load_rgb(path))).all()


def test_a_channels_first_array_is_refused():
    assert load_rgb(np.zeros((64, 48, 3), np.uint8)).size == (48, 64)
    assert load_rgb(np.zeros((64, 48, 13), np.uint16)).size == (48, 64)  # bands last
    with pytest.raises(ImageReadError, match=r"shape \(3, 64, 48\) looks channels-first"):
        load_rgb(np.zeros((3, 64, 48), np.uint8))
    with pytest.raises(ImageReadError, match="looks channels-first"):
        load_rgb(np.zeros((13, 64, 64), np.uint16))  # rasterio's read() of a Sentinel-2 tile
    with pytest.raises(ImageReadError, match="expected an"):
        load_rgb(np.zeros((2, 3, 4, 5), np.uint8))


def test_a_thin_multiband_file_is_not_taken_for_channels_first(tmp_path):
    import tifffile

    path = tmp_path / "strip.tif"
    tifffile.imwrite(path, np.ones((13, 3, 64), np.uint16), planarconfig="separate")  # 13 bands, 3 rows, 64 columns
    assert load_rgb(path).size == (64, 3)


def test_load_rgb_multiband_tiff_with_band_choice(tmp_path):
    import tifffile

    arr = np.zeros((13, 8, 8), np.uint16)  # planar, as Sentinel-2 GeoTIFFs often are
    arr[3] = np.arange(64).reshape(8, 8) * 100  # B04
    p = tmp_path / "ms.jpg"  # extension lies
    tifffile.imwrite(p, arr)
    im = load_rgb(p, bands=(3, 2, 1))
    a = np.asarray(im)
    assert im.size == (8, 8)
    assert a[..., 0].max() == 255 and a[..., 0].min() == 0 and a[..., 1].max() == 0
    with pytest.raises(ImageReadError, match="out of range"):
        load_rgb(p, bands=(13, 2, 1))


def test_unreadable_or_missing_image_names_path(tmp_path):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="corrupt.jpg"):
        load_rgb(bad)
    with pytest.raises(ImageReadError, match="missing.tif"):
        load_rgb(tmp_path / "missing.tif")


def test_missing_root_names_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        from aerith.data.datasets.base import RSDataset

        class Dummy(RSDataset):
            name = "dummy"

            def _load(self):
                return []

        Dummy(tmp_path / "nowhere")


def test_a_geotiffs_nodata_is_left_out_of_the_stretch(tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    reflectance = rng.random((40, 40, 3)).astype(np.float32)
    reflectance[:, :10] = -9999.0  # the border GDAL marks as nodata
    path = tmp_path / "nodata.tif"
    tifffile.imwrite(path, reflectance, extratags=[(42113, "s", 0, "-9999", True)])
    valid = np.asarray(load_rgb(path))[:, 10:]
    assert valid.min() == 0 and valid.max() == 255 and len(np.unique(valid)) > 200  # not one blown-out value
    assert (np.asarray(load_rgb(path))[:, :10] == 0).all()  # nodata shown black
    tifffile.imwrite(path, reflectance, extratags=[(42113, "s", 0, "none", True)])
    with pytest.warns(UserWarning, match="GDAL_NODATA tag 'none' is not a number; every pixel is read as data"):
        load_rgb(path)
    counts = rng.integers(100, 4000, (40, 40, 3)).astype(np.uint16)
    counts[:, :10] = 0  # a 16-bit image whose nodata is 0
    tifffile.imwrite(path, counts, extratags=[(42113, "s", 0, "0", True)])
    assert len(np.unique(np.asarray(load_rgb(path))[:, 10:])) > 200
    rgb = rng.integers(0, 256, (40, 40, 3)).astype(np.uint8)
    tifffile.imwrite(path, rgb, extratags=[(42113, "s", 0, "0", True)])
    assert (np.asarray(load_rgb(path)) == rgb).all()  # 8-bit: as stored


def test_bands_naming_an_alpha_channel_are_an_error_not_a_colour(tmp_path):
    # a processor saved with bands (3, 2, 1) for 4-band TIFFs read an RGBA PNG's alpha as red
    red = Image.new("RGBA", (8, 8), (255, 0, 0, 255))
    red.save(tmp_path / "red.png")
    for image, name in ((red, "<PIL image, mode RGBA, 8x8>"), (tmp_path / "red.png", "red.png")):
        with pytest.raises(ImageReadError, match=r"pick channel 3, the alpha channel of this RGBA image"):
            load_rgb(image, (3, 2, 1))
    with pytest.raises(ImageReadError, match=r"<PIL image, mode RGB, 8x8>: band index 3 out of range"):
        load_rgb(red.convert("RGB"), (3, 2, 1))
    assert load_rgb(red, (0, 1, 2)).getpixel((0, 0)) == (255, 0, 0)
    rgbn = np.zeros((8, 8, 4), np.uint16)
    rgbn[..., 3] = 1000  # a 4-band TIFF's fourth band is data (NIR), and may be picked
    import tifffile

    tifffile.imwrite(tmp_path / "rgbn.tif", rgbn, photometric="minisblack", planarconfig="contig")
    assert load_rgb(tmp_path / "rgbn.tif", (3, 2, 1)).size == (8, 8)
