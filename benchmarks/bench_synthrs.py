"""SynthRS generation speed: 2,000 scenes at 128 px in every native format (target: under a minute on 2 cores).

``aerith.data.synthrs.generate`` is timed end to end (drawing, text, encoding,
all annotation files, the atomic rename) with one process and with two. The
baseline, measured in the same run, is the floor any generator of these
formats pays: encoding and writing the same number of ready-made 128 px images
as TIFF twice, PNG and JPEG with the same settings. A stage breakdown of one
process (drawing + graph, text, encoding) is measured on a subset.

Run: ``python benchmarks/bench_synthrs.py`` (``--n`` and ``--size`` to change the set).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

N_SCENES = 2000
SIZE = 128
STAGE_SCENES = 300
REPEATS = 2  # other processes share the cores: the best of a few runs is the machine's speed


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _write_only(n: int, size: int, work: Path) -> float:
    """Seconds to encode and write ``n`` noise images in the four formats (the I/O floor)."""
    from aerith.data.synthrs.writers import encode_images

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    start = time.perf_counter()
    for i in range(n):
        image = np.roll(base, i, axis=1)
        encoded = encode_images(image)
        for name, key in ((f"{i}.tif", "tif"), (f"{i}b.tif", "tif"), (f"{i}.png", "png"), (f"{i}.jpg", "jpg")):
            (work / name).write_bytes(encoded[key])
    return time.perf_counter() - start


def _stages(n: int, size: int) -> dict[str, float]:
    """Milliseconds per scene of each stage in one process."""
    from aerith.data.synthrs.language import captions, questions, referring_expressions
    from aerith.data.synthrs.layout import CLASS_NAMES, make_scene
    from aerith.data.synthrs.writers import encode_images

    times = {"draw": 0.0, "text": 0.0, "encode": 0.0}
    for i in range(n):
        rng = np.random.default_rng([0, i])
        t0 = time.perf_counter()
        image, graph = make_scene(i, CLASS_NAMES[i % len(CLASS_NAMES)], size, rng)
        t1 = time.perf_counter()
        captions(graph, rng), questions(graph, rng), referring_expressions(graph, rng)
        t2 = time.perf_counter()
        encode_images(image)
        t3 = time.perf_counter()
        times["draw"] += t1 - t0
        times["text"] += t2 - t1
        times["encode"] += t3 - t2
    return {k: 1000 * v / n for k, v in times.items()}


def run(n: int = N_SCENES, size: int = SIZE) -> dict:
    from aerith.data.synthrs import generate

    result: dict = {"n": n, "size": size, "cpu_count": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        floor_dir = tmp_path / "floor"
        floor_dir.mkdir()
        result["write_only_s"] = min(_write_only(n, size, floor_dir) for _ in range(REPEATS))
        for workers in (1, 2):
            times = []
            for repeat in range(REPEATS):
                out = tmp_path / f"synthrs-{workers}-{repeat}"
                start = time.perf_counter()
                summary = generate(out, n, size, seed=0, workers=workers)
                times.append(time.perf_counter() - start)
            seconds = min(times)
            result["runs"].append(
                {
                    "workers": workers,
                    "seconds": seconds,
                    "all_seconds": times,
                    "scenes_per_s": n / seconds,
                    "vs_write_only": seconds / result["write_only_s"],
                    "disk_mib": _folder_bytes(out) / 2**20,
                    "samples": sum(summary.splits.values()) + sum(summary.question_types.values()) + summary.expressions,
                }
            )
    result["stages_ms"] = _stages(STAGE_SCENES, size)
    return result


def to_markdown(result: dict) -> str:
    n, size = result["n"], result["size"]
    lines = [
        f"{n} scenes of {size} px, seed 0, written in all four formats plus scene_graphs.json and the card; "
        f"{result['cpu_count']} CPU cores. Baseline (write only): encoding and writing {n} ready-made images "
        f"in the same four files per scene took {result['write_only_s']:.1f} s. Times are the best of {REPEATS} runs.",
        "",
        "| processes | time (s) | scenes/s | time vs write-only | output (MiB) |",
        "|---|---|---|---|---|",
    ]
    for run_ in result["runs"]:
        lines.append(
            f"| {run_['workers']} | {run_['seconds']:.1f} | {run_['scenes_per_s']:.0f} | "
            f"{run_['vs_write_only']:.2f}x | {run_['disk_mib']:.0f} |"
        )
    stages = result["stages_ms"]
    lines += [
        "",
        "One process, per scene: "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in stages.items())
        + f" (mean over {STAGE_SCENES} scenes).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N_SCENES)
    parser.add_argument("--size", type=int, default=SIZE)
    args = parser.parse_args()
    print(to_markdown(run(args.n, args.size)))
