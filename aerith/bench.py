"""`aerith bench`: run the scripts in benchmarks/ and rewrite benchmarks/RESULTS.md.

Each ``benchmarks/bench_<name>.py`` defines ``run() -> dict`` and
``to_markdown(result) -> str``, and may define ``skip_reason() -> str | None`` to say it
cannot run on this machine (its section of RESULTS.md is then kept as it was). Every
number a script reports is a ratio against a baseline measured in the same run, so
results from different machines stay comparable. Sections of scripts not run this
time are kept.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from aerith.atomic import atomic_write_text

HEADER = "# Benchmark results\n\nWritten by `aerith bench`; each section names the machine and date it was measured on.\n"


def machine_description() -> str:
    import torch

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GiB RAM, {gpu}; "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def discover(bench_dir: Path) -> dict[str, Path]:
    if not bench_dir.is_dir():
        raise FileNotFoundError(f"{bench_dir}: no benchmarks folder (run from the repository root or pass --dir)")
    return {p.stem.removeprefix("bench_"): p for p in sorted(bench_dir.glob("bench_*.py"))}


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"aerith_bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"{path} defines no run() function")
    return module


def split_sections(text: str) -> tuple[str, list[list[str]]]:
    """An existing RESULTS.md as its text before the first ``## `` heading and its ``[heading, body]`` sections,
    in order (a ``## `` line inside a fenced code block is text): hand-written sections and notes are kept as
    they are when a benchmark's own is replaced."""
    fences = [m.span() for m in re.finditer(r"^```.*?^```", text, flags=re.M | re.S)]
    starts = [m for m in re.finditer(r"^## (.+?)[ \t]*\r?$", text, flags=re.M) if not any(a < m.start() < b for a, b in fences)]
    if not starts:
        return text, []
    bounds = [m.start() for m in starts] + [len(text)]
    sections = [[m.group(1).strip(), text[m.end() : bounds[i + 1]].strip()] for i, m in enumerate(starts)]
    return text[: starts[0].start()], sections


def _render(preamble: str, sections: Sequence[Sequence[str]]) -> str:
    return preamble.rstrip("\n") + "\n" + "".join(f"\n## {heading}\n\n{body}\n" for heading, body in sections)


def run_benchmarks(
    bench_dir: Path,
    results_path: Path,
    only: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Run the chosen benchmarks (all by default) and rewrite ``results_path``; returns their results."""
    scripts = discover(bench_dir)
    names = list(only) if only else list(scripts)
    unknown = [n for n in names if n not in scripts]
    if unknown:
        raise KeyError(f"unknown benchmark(s) {unknown}; available: {', '.join(scripts)}")
    preamble, sections = split_sections(results_path.read_text()) if results_path.exists() else (HEADER, [])
    preamble = preamble if preamble.strip() else HEADER
    machine = machine_description()
    today = dt.date.today().isoformat()
    results = {}
    for name in names:
        module = _load(scripts[name])
        reason = module.skip_reason() if callable(getattr(module, "skip_reason", None)) else None
        if reason:  # e.g. a GPU benchmark on a machine without one: its earlier section stays
            echo(f"skipping {name}: {reason}")
            continue
        echo(f"running {name} ...")
        result = module.run()
        results[name] = result
        body = module.to_markdown(result) if hasattr(module, "to_markdown") else "```json\n" + json.dumps(result, indent=2) + "\n```"
        doc = (module.__doc__ or "").strip().splitlines()
        summary = doc[0] if doc else ""
        text = f"{summary}\n\nMachine: {machine}. Date: {today}.\n\n{body}"
        mine = next((section for section in sections if section[0] == name), None)
        if mine is None:
            sections.append([name, text])
        else:
            mine[1] = text
        # write after each benchmark, so a long run that is interrupted keeps what it measured
        atomic_write_text(results_path, _render(preamble, sections))
    return results
