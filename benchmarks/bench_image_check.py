"""Cost of the image check that makes ``on_bad="skip"`` cover unreadable images (and that training runs at load).

For each common format, 1,000 images of 256x256 px (JPEG, PNG, LZW-compressed
TIFF) and 64x64 13-band TIFFs (EuroSAT-MS-like) are written (not timed), then
timed per image: ``image_size`` (the header read that loaders already did, the
baseline), ``check_image`` (header, size limit and the end-of-file / strip-extent
checks: ``verify_images="header"``), and ``load_rgb`` (a full decode to RGB, what
every training step pays per image, and what ``verify_images="full"`` costs).
The ratios say what the check adds over a header read and what share of one
decode it costs; the last column extrapolates to a 31,500-image dataset
(NWPU-RESISC45) on this machine.

Run: ``python benchmarks/bench_image_check.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N_IMAGES = 1000
REPEATS = 3  # other processes share the cores: the median of a few passes
DATASET = 31_500


def _write(folder: Path, kind: str) -> list[Path]:
    import tifffile
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    base = np.stack([x, y, (x + y) // 2], axis=2).astype(np.uint8)
    paths = []
    for i in range(N_IMAGES):
        path = folder / f"{i}.{ 'tif' if 'tif' in kind else kind}"
        if kind == "ms-tif":
            tifffile.imwrite(path, rng.integers(0, 4000, (64, 64, 13), dtype=np.uint16), photometric="minisblack", planarconfig="contig")
        else:
            pixels = np.roll(base, i, axis=1) ^ rng.integers(0, 16, base.shape, dtype=np.uint8)
            if kind == "lzw-tif":
                Image.fromarray(pixels).save(path, format="TIFF", compression="tiff_lzw")
            else:
                Image.fromarray(pixels).save(path, quality=90) if kind == "jpg" else Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _per_image_us(fn: Callable[[Path], object], paths: list[Path]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for path in paths:
            fn(path)
        times.append((time.perf_counter() - start) / len(paths) * 1e6)
    return statistics.median(times)


def run() -> dict:
    import os

    from aerith.imageio import check_image, image_size, load_rgb

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, label in (("jpg", "JPEG 256 px"), ("png", "PNG 256 px"), ("lzw-tif", "TIFF LZW 256 px"), ("ms-tif", "TIFF 13-band 64 px")):
            paths = _write(Path(tmp) / kind, kind)
            bands = (3, 2, 1) if kind == "ms-tif" else None
            header = _per_image_us(image_size, paths)
            check = _per_image_us(check_image, paths)
            decode = _per_image_us(lambda p, bands=bands: load_rgb(p, bands), paths)
            rows.append({"format": label, "header_us": header, "check_us": check, "decode_us": decode})
    return {"rows": rows, "n": N_IMAGES, "repeats": REPEATS, "load": load}


def to_markdown(result: dict) -> str:
    lines = [
        "| format | header read (us) | check_image (us) | full decode (us) | check / header | check / decode | check of 31,500 images (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['format']} | {r['header_us']:.0f} | {r['check_us']:.0f} | {r['decode_us']:.0f} "
            f"| {r['check_us'] / r['header_us']:.2f}x | {r['check_us'] / r['decode_us']:.2f}x | {r['check_us'] * DATASET / 1e6:.1f} |"
        )
    lines += [
        "",
        f"Per image, median of {result['repeats']} passes over {result['n']} files each (warm page cache). The check is "
        "what `on_bad=\"skip\"` (and every training source) adds when a dataset is indexed; a full decode is what "
        "each epoch pays per image anyway."
        + (f" Load average when the run started: {result['load']:.1f} (other processes shared the cores: absolute "
           "times are inflated, the ratios less so)." if result.get("load") is not None else ""),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
