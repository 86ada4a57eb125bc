"""Every TIFF layout users meet is read by the library's reader; bombs and damaged files are refused."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from aerith.data import ImageReadError
from aerith.imageio import check_image, image_size, load_rgb, read_array
from tests.fakes.tiff.data import VARIANTS, write_all, write_bomb


@pytest.fixture(scope="module")
def tiffs(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("tiffs"))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_reads_back(tiffs, name):
    path, pixels, lossy = tiffs[name]
    arr = read_array(path)
    expected = pixels if pixels.ndim == 3 else pixels[:, :, None]
    assert arr.shape == expected.shape and arr.dtype == expected.dtype
    if lossy:  # JPEG inside the TIFF: close, not equal
        assert np.abs(arr.astype(float) - expected).mean() < 3
    else:
        np.testing.assert_array_equal(arr, expected)
    assert check_image(path) == image_size(path) == (48, 40)
    rgb = load_rgb(path, bands=(3, 2, 1) if arr.shape[2] == 13 else None)
    assert rgb.mode == "RGB" and rgb.size == (48, 40)


def test_the_variants_use_the_compressions_they_name(tiffs):
    import tifffile

    def compression(name):
        with tifffile.TiffFile(tiffs[name][0]) as tif:
            page = tif.pages[0]
            return page.compression.name, page.is_tiled, tif.is_bigtiff, page.predictor

    assert compression("lzw")[0] == "LZW" and compression("jpeg")[0] == "JPEG"
    assert compression("deflate")[0] in ("ADOBE_DEFLATE", "DEFLATE") and compression("packbits")[0] == "PACKBITS"
    assert compression("zstd")[0] == "ZSTD" and compression("lzma")[0] == "LZMA"
    assert compression("lzw-tiled")[:2] == ("LZW", True) and compression("jpeg-tiled")[:2] == ("JPEG", True)
    assert compression("bigtiff-zstd-tiled")[1:3] == (True, True)
    assert compression("lzw-horizontal-predictor-16bit")[3] == 2 and compression("deflate-float-predictor")[3] == 3


@pytest.mark.parametrize("bigtiff", [False, True])
def test_a_small_file_declaring_20000_px_is_refused_before_decoding(tmp_path, bigtiff):
    bomb = write_bomb(tmp_path / "bomb.tif", 20000, 20000, bigtiff=bigtiff)
    assert bomb.stat().st_size < 30_000 and image_size(bomb) == (20000, 20000)  # the header alone is fine
    tracemalloc.start()
    try:
        for reader in (read_array, check_image, load_rgb):
            with pytest.raises(ImageReadError, match=r"bomb.tif: declares 20000x20000 = 400,000,000 pixels, more than .* limit"):
                reader(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # decoding would have taken 400 MB


def test_the_limit_follows_pillows_setting_and_counts_bands(tmp_path, monkeypatch):
    small = write_bomb(tmp_path / "small.tif", 300, 200)
    assert read_array(small).shape == (200, 300, 1)  # a declared size within the limit decodes
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 2x = 40,000 px: 300x200 is over
    with pytest.raises(ImageReadError, match="declares 300x200 = 60,000 pixels"):
        read_array(small)
    import tifffile

    bands = tmp_path / "bands.tif"
    tifffile.imwrite(bands, np.zeros((100, 100, 13), np.uint16), photometric="minisblack", planarconfig="contig")
    with pytest.raises(ImageReadError, match=r"would decode into 260,000 bytes .* more than .* 160,000 bytes"):
        read_array(bands)  # 10,000 px is within the pixel limit, 13 uint16 bands are not
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # disabled, as in Pillow
    assert read_array(bands).shape == (100, 100, 13)


def test_cut_short_files_are_found_by_the_header_check(tmp_path, tiffs):
    cases = {}
    for name, fmt in (("a.jpg", "JPEG"), ("a.png", "PNG")):
        Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(tmp_path / name, format=fmt)
        cases[name] = tmp_path / name
    cases["a.tif"] = tiffs["lzw-tiled"][0]
    for name, path in cases.items():
        data = path.read_bytes()
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(data[: len(data) // 2] if name != "a.tif" else data[:600])
        assert check_image(path)  # the whole file passes
        with pytest.raises(ImageReadError, match=rf"cut-{name}: (truncated|cannot read)"):
            check_image(cut)


def test_a_folder_or_missing_file_given_as_an_image(tmp_path):
    (tmp_path / "scene.tif").mkdir()
    for reader in (read_array, image_size, check_image, load_rgb):
        with pytest.raises(ImageReadError, match=r"scene.tif: is a folder, not an image file"):
            reader(tmp_path / "scene.tif")
        with pytest.raises(ImageReadError, match=r"absent.png: image file not found"):
            reader(tmp_path / "absent.png")
