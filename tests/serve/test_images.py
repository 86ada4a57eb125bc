"""Images in requests decode as the library reads the same files, and every refusal names its place."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from aerith.data.io import read_array
from aerith.serve.images import ImageInputError, ImagePolicy, data_url, load_image


def test_data_urls_decode_like_the_files(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "bands.tif": lambda p: tifffile.imwrite(p, rng.integers(0, 4000, size=(13, 20, 24), dtype=np.uint16)),
        "grey.png": lambda p: Image.fromarray(rng.integers(0, 255, size=(10, 12), dtype=np.uint8)).save(p),
        "palette.png": lambda p: Image.fromarray(rng.integers(0, 255, size=(10, 12, 3), dtype=np.uint8)).convert("P").save(p),
        "rgba.png": lambda p: Image.fromarray(rng.integers(0, 255, size=(9, 7, 4), dtype=np.uint8)).save(p),
        "photo.jpg": lambda p: Image.fromarray(rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)).save(p),
        "nodata.tif": lambda p: tifffile.imwrite(  # a -9999 border: NaN, as read_array gives it
            p, np.pad(rng.integers(0, 4000, size=(3, 8, 8)).astype(np.int16), ((0, 0), (2, 2), (2, 2)), constant_values=-9999),
            photometric="minisblack", planarconfig="separate", extratags=[(42113, "s", 0, "-9999", True)]),
    }
    policy = ImagePolicy(max_pixels=10_000, allow_dir=tmp_path)
    for name, write in files.items():
        path = tmp_path / name
        write(path)
        expected = read_array(path)
        assert np.array_equal(load_image(data_url(path), "x", policy), expected, equal_nan=True), name
        assert np.array_equal(load_image(str(path), "x", policy), expected, equal_nan=True), name
        assert np.array_equal(load_image(name, "x", policy), expected, equal_nan=True), name  # relative to --allow-dir
    assert np.isnan(read_array(tmp_path / "nodata.tif")).sum() == 3 * (12 * 12 - 8 * 8)


def test_bytes_of_no_image_format_are_refused_naming_the_place_not_a_buffer():
    url = "data:image/png;base64," + __import__("base64").b64encode(b"GIF-ish but not an image at all").decode()
    with pytest.raises(ImageInputError) as info:
        load_image(url, "messages[0].content[1]", ImagePolicy())
    text = str(info.value)
    assert text.startswith("messages[0].content[1]: cannot decode the image: not in a format") and "BytesIO" not in text and " at 0x" not in text


def test_refusals_name_the_place(tmp_path):
    big = tmp_path / "big.png"
    Image.new("RGB", (120, 100)).save(big)
    link = tmp_path / "allowed" / "link.png"
    link.parent.mkdir()
    link.symlink_to(big)
    policy = ImagePolicy(max_pixels=10_000, allow_dir=tmp_path / "allowed")
    for url, message in (
        (data_url(big), "120x100 = 12,000 pixels, over the limit of 10,000"),
        (str(link), "outside --allow-dir"),  # a link out of the folder is outside it
        ("../big.png", "outside --allow-dir"),
        ("ftp://host/x.png", "remote image URLs are refused"),
        ("", "empty image URL"),
    ):
        with pytest.raises(ImageInputError) as info:
            load_image(url, "messages[2].content[0]", policy)
        assert message in str(info.value) and str(info.value).startswith("messages[2].content[0]: ")
    with pytest.raises(ImageInputError, match="--allow-dir DIR"):
        load_image(str(big), "images[0]", ImagePolicy())
