"""`aerith scan` at scale: peak memory against raster size (target: flat), tiles/s with batch 16 against batch 1, time against raster area.

Rasters are mosaics of SynthRS scenes (256 px, a pool of 32 drawn once and
placed in a seeded order), written window by window as tiled, deflate-compressed
3-band GeoTIFFs in UTM 33N with a nodata block in one corner (1/16 of the
area), so that writing them never holds a whole raster in memory.

1. **Peak RSS**: each raster is scanned by a fresh Python process running the
   real model, ``aerith-tiny`` (random weights), task ``vg``, 512 px tiles,
   overlap 0.2, batch 16, 8 new tokens; the process reports its peak RSS
   (``ru_maxrss``) and its RSS just before the scan (torch, the model and the
   imports loaded). The ratio of the peaks, 8,192 px over 2,048 px (16x the
   area, 16x the tiles), is the figure; the target is at most 1.2.
2. **Batching**: ``aerith-tiny`` scans the same 2,048 px raster in 256 px tiles
   without overlap (60 tiles with data) with batch 16 and with batch 1, answers
   fixed at 8 new tokens (``min_new_tokens`` = ``max_new_tokens``, so both runs
   generate the same number of tokens), rounds alternating, best round kept.
   Tiles/s counts the whole scan (reads, model, journal, outputs).
3. **Time against area**: a model double that answers every tile at once with
   the same two boxes, one touching the tile's right side (no model cost, so the
   scan's own work shows: windowed reads, tile images, journal, the merge's
   checks, outputs, checksum; no two tiles' boxes coincide, so nothing merges) scans 2,048, 4,096 and 8,192 px
   rasters in fresh processes, each after an untimed warm-up scan of a 1,024 px
   raster (imports, first calls); seconds per megapixel at each size, and the
   time ratio against the area ratio (1.0 = linear).

Run: ``python benchmarks/bench_scan.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RSS_SIZES = (2048, 8192)
AREA_SIZES = (2048, 4096, 8192)
SCENE = 256
POOL = 32
BATCH = 16
BATCH_ROUNDS = 2
NEW_TOKENS = 8

CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.argv[1])

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

from aerith.geo import scan
if args["model"] == "aerith-tiny":
    import torch
    from aerith import load_vlm
    torch.manual_seed(0)
    vlm = load_vlm("aerith-tiny", seed=0, device="cpu")
    vlm._warned_random = True  # a benchmark: the answers are not looked at
else:
    class BoxDouble:
        name = "box-double"
        def generate(self, images, prompts, *, batch_size=16, **kwargs):
            return ["[100, 100, 300, 300] [900, 400, 1000, 600]"] * len(images)
    vlm = BoxDouble()
if args.get("warmup"):  # load the libraries and take the first-call costs on a small raster, untimed
    scan(vlm, args["warmup"], task="vg", query="storage tank", out=args["out"] + "-warmup", tile=args["tile"],
         overlap=args["overlap"], batch_size=args["batch"], max_new_tokens=args["tokens"])
before = rss_mib()
tic = time.perf_counter()
result = scan(vlm, args["raster"], task="vg", query="storage tank", out=args["out"], tile=args["tile"],
              overlap=args["overlap"], batch_size=args["batch"], max_new_tokens=args["tokens"])
seconds = time.perf_counter() - tic
print(json.dumps({"seconds": seconds, "rss_before_mib": before, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tiles": result.tiles, "results": result.results}))
"""


def write_mosaic(path: Path, size: int, seed: int = 0) -> Path:
    """A ``size`` px mosaic of SynthRS scenes, written one scene-row window at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from aerith.data.synthrs import CLASS_NAMES, make_scene

    pool = [
        np.maximum(make_scene(i, CLASS_NAMES[i % len(CLASS_NAMES)], SCENE, np.random.default_rng([seed, i]))[0], 1)
        for i in range(POOL)
    ]
    rng = np.random.default_rng(seed)
    n = size // SCENE
    nodata_side = n // 4  # a nodata block of 1/16 of the area in the top-right corner
    profile = dict(
        driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32633",
        transform=from_origin(500_000.0, 4_500_000.0, 0.5, 0.5), tiled=True, blockxsize=256, blockysize=256,
        compress="deflate", nodata=0, BIGTIFF="IF_SAFER",
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        for r in range(n):
            row = np.zeros((3, SCENE, size), np.uint8)
            for c in range(n):
                if r < nodata_side and c >= n - nodata_side:
                    continue
                row[:, :, c * SCENE : (c + 1) * SCENE] = np.moveaxis(pool[int(rng.integers(POOL))], -1, 0)
            ds.write(row, window=Window(0, r * SCENE, size, SCENE))
    return path


def _child(
    raster: Path, out: Path, *, model: str, tile: int = 512, overlap: float = 0.2, batch: int = BATCH, warmup: Path | None = None
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    args = {"raster": str(raster), "out": str(out), "model": model, "tile": tile, "overlap": overlap, "batch": batch, "tokens": NEW_TOKENS,
            "warmup": str(warmup) if warmup else None}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"scan child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class _FixedLength:
    """aerith-tiny answering exactly ``NEW_TOKENS`` tokens per tile, whatever the batch."""

    def __init__(self, vlm: Any) -> None:
        self.vlm, self.name = vlm, vlm.name

    def generate(self, images, prompts, *, batch_size=16, max_new_tokens=NEW_TOKENS, **kwargs):
        return self.vlm.generate(images, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)


def _batching(raster: Path, work: Path) -> dict[str, Any]:
    import torch

    from aerith import load_vlm
    from aerith.geo import scan

    torch.manual_seed(0)
    vlm = load_vlm("aerith-tiny", seed=0, device="cpu")
    vlm._warned_random = True
    model = _FixedLength(vlm)
    kwargs = dict(task="vg", query="storage tank", tile=256, overlap=0.0, max_new_tokens=NEW_TOKENS)
    scan(model, raster, out=work / "warmup", batch_size=BATCH, **kwargs)  # first-call costs out of the timings
    rates: dict[int, list[float]] = {1: [], BATCH: []}
    tiles = 0
    for r in range(BATCH_ROUNDS):
        for bs in rates:
            tic = time.perf_counter()
            result = scan(model, raster, out=work / f"r{r}-bs{bs}", batch_size=bs, **kwargs)
            rates[bs].append(result.tiles["done"] / (time.perf_counter() - tic))
            tiles = result.tiles["done"]
    return {
        "tiles_with_data": tiles,
        "tiles_per_s": {bs: max(v) for bs, v in rates.items()},
        "ratio": max(rates[BATCH]) / max(rates[1]),
        "threads": torch.get_num_threads(),
    }


def run() -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rasters = {size: write_mosaic(work / f"mosaic-{size}.tif", size) for size in sorted(set(RSS_SIZES) | set(AREA_SIZES))}
        sizes_mib = {size: p.stat().st_size / 2**20 for size, p in rasters.items()}
        memory = {size: _child(rasters[size], work / f"rss-{size}", model="aerith-tiny") for size in RSS_SIZES}
        warm = write_mosaic(work / "warmup.tif", 1024, seed=1)
        area = {size: _child(rasters[size], work / f"area-{size}", model="box-double", warmup=warm) for size in AREA_SIZES}
        batching = _batching(rasters[2048], work)
    small, large = RSS_SIZES
    first, last = AREA_SIZES[0], AREA_SIZES[-1]
    return {
        "raster_mib": sizes_mib,
        "memory": memory,
        "rss_ratio": memory[large]["peak_rss_mib"] / memory[small]["peak_rss_mib"],
        "scan_growth_ratio": (memory[large]["peak_rss_mib"] - memory[large]["rss_before_mib"])
        / max(memory[small]["peak_rss_mib"] - memory[small]["rss_before_mib"], 1e-9),
        "area": area,
        "time_ratio": area[last]["seconds"] / area[first]["seconds"],
        "area_ratio": (last / first) ** 2,
        "batching": batching,
        "load_average": (load_start, os.getloadavg()[0]),
        "cores": os.cpu_count(),
    }


def to_markdown(result: dict[str, Any]) -> str:
    mem, area, b = result["memory"], result["area"], result["batching"]
    lines = [
        f"Load average (1 min) at the start and end: {result['load_average'][0]:.1f} and {result['load_average'][1]:.1f} "
        f"on {result['cores']} cores: other jobs shared the machine when it was above that count, which slows the timings "
        "(not the memory).",
        "",
        "**Peak memory** (aerith-tiny, random weights; vg, 512 px tiles, overlap 0.2, batch 16, 8 new tokens; a fresh process per raster):",
        "",
        "| raster | file (MiB) | tiles (done / nodata) | RSS before scan (MiB) | peak RSS (MiB) | peak - before (MiB) | scan s |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, m in mem.items():
        t = m["tiles"]
        lines.append(
            f"| {int(size):,} px | {result['raster_mib'][size]:.1f} | {t['done']} / {t['skipped_nodata']} | {m['rss_before_mib']:.0f} "
            f"| {m['peak_rss_mib']:.0f} | {m['peak_rss_mib'] - m['rss_before_mib']:.0f} | {m['seconds']:.1f} |"
        )
    lines += [
        "",
        f"Peak RSS 8,192 px over 2,048 px (16x the area): **{result['rss_ratio']:.2f}x** (target <= 1.2); "
        f"the scan's own growth above the loaded model: {result['scan_growth_ratio']:.2f}x.",
        "",
        f"**Batching** (aerith-tiny, 2,048 px raster, 256 px tiles, {b['tiles_with_data']} tiles with data, exactly "
        f"{NEW_TOKENS} new tokens per tile, {b['threads']} torch threads, best of {BATCH_ROUNDS} alternating rounds): "
        f"batch 1 {b['tiles_per_s'][1]:.2f} tiles/s, batch {BATCH} {b['tiles_per_s'][BATCH]:.2f} tiles/s: **{b['ratio']:.2f}x**.",
        "",
        "**Time against area** (a model double answering at once, so the scan's own work shows; 512 px tiles, overlap 0.2; "
        "a fresh process per raster, after an untimed warm-up scan):",
        "",
        "| raster | tiles (done / nodata) | boxes -> objects | seconds | s per Mpx |",
        "|---|---|---|---|---|",
    ]
    for size, a in area.items():
        t, r = a["tiles"], a["results"]
        lines.append(
            f"| {int(size):,} px | {t['done']} / {t['skipped_nodata']} | {r['boxes']} -> {r['objects']} | {a['seconds']:.2f} "
            f"| {a['seconds'] / (int(size) ** 2 / 1e6):.3f} |"
        )
    lines += [
        "",
        f"Time {AREA_SIZES[-1]:,} px over {AREA_SIZES[0]:,} px: {result['time_ratio']:.1f}x for {result['area_ratio']:.0f}x the area "
        f"({result['time_ratio'] / result['area_ratio']:.2f} of linear).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
