"""The work behind `aerith eval`: argument checks, model loading, a summary for the terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aerith.eval.benchmarks import BENCHMARKS, SUITES, get_benchmark, get_suite, list_benchmarks


def parse_roots(values: Sequence[str], benchmark: str | None) -> dict[str, Path]:
    """``--root`` values as ``{name: folder}``.

    Each value is ``NAME=DIR`` (NAME a benchmark or dataset name) or, with a single
    ``--benchmark``, a bare ``DIR``. A value whose part before ``=`` names no benchmark
    or dataset is read as a bare folder (folders may contain ``=``).

    Raises:
        ValueError: a bare folder without ``--benchmark``, or a name given twice.
    """
    names = set(BENCHMARKS) | {b.dataset for b in BENCHMARKS.values()}
    roots: dict[str, Path] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if sep and name.lower() in names:
            key, path = name.lower(), Path(folder)
        elif benchmark is not None:
            key, path = benchmark.lower(), Path(value)
        else:
            raise ValueError(f"--root {value!r}: give NAME=DIR (NAME one of the suite's benchmarks or datasets)")
        if key in roots:
            raise ValueError(f"--root given twice for {key!r}")
        roots[key] = path
    return roots


def root_for(benchmark: str, roots: dict[str, Path]) -> Path:
    """The folder given for a benchmark (by its name or its dataset's name)."""
    bench = get_benchmark(benchmark)
    root = roots.get(bench.name, roots.get(bench.dataset))
    if root is None:
        raise ValueError(f"no --root for benchmark {bench.name!r} (dataset {bench.dataset!r}): add --root DIR")
    return root


def benchmarks_text() -> str:
    """What `aerith eval --list` prints."""
    lines = ["benchmark          dataset            split       task"]
    for name in list_benchmarks():
        b = BENCHMARKS[name]
        lines.append(f"{name:<18} {b.dataset:<18} {b.split:<11} {b.task}")
    lines.append("")
    lines += [f"suite {name}: {', '.join(names)}" for name, names in SUITES.items()]
    return "\n".join(lines)


def summary_table(results: Sequence[dict[str, Any]]) -> Any:
    """A rich table of the headline rows of each result."""
    from rich.table import Table

    from aerith.eval.report import metric_rows

    table = Table("benchmark", "metric", "value")
    for r in results:
        for metric, value in metric_rows(r):
            table.add_row(r["benchmark"], metric, value)
    return table


def run_eval(
    model: str | None,
    *,
    benchmark: str | None,
    suite: str | None,
    roots: Sequence[str],
    out: Path | None,
    split: str | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    predictions: Path | None = None,
    box_format: str = "auto",
    write_prompts_to: Path | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Run one of the `aerith eval` modes (see the command's help).

    Returns:
        ``(results, suite)``: the results of each benchmark scored, and the suite summary
        (``None`` outside ``--suite``).

    Raises:
        ValueError, KeyError, FileNotFoundError, DataError: bad arguments or data.
    """
    from aerith.eval import runner

    if (benchmark is None) == (suite is None):
        raise ValueError("give exactly one of --benchmark NAME or --suite NAME (see --list)")
    if suite is not None:
        get_suite(suite)
        if predictions is not None or write_prompts_to is not None:
            raise ValueError("--predictions and --write-prompts take one --benchmark, not a --suite")
    else:
        get_benchmark(benchmark)  # an unknown name fails before any loading
    parsed_roots = parse_roots(roots, benchmark)

    if write_prompts_to is not None:
        n = runner.write_prompts(benchmark, root_for(benchmark, parsed_roots), write_prompts_to, split=split, limit=limit)
        echo(f"wrote {n} prompts to {write_prompts_to}; answer them as {{\"id\", \"answer\"}} lines and score with --predictions")
        return [], None
    if predictions is not None:
        if model is not None:
            raise ValueError("give either MODEL or --predictions FILE, not both")
        result = runner.score_predictions(
            predictions, benchmark, root_for(benchmark, parsed_roots), out, split=split, limit=limit, box_format=box_format
        )
        return [result], None

    if model is None:
        raise ValueError("give a MODEL (preset name or saved folder), or --predictions FILE")
    if out is None:
        raise ValueError("give --out DIR, the run folder")
    if suite is None and not parsed_roots:
        raise ValueError(f"no --root for benchmark {benchmark!r}: add --root DIR")
    from aerith.infer.load import load_vlm

    vlm = load_vlm(model, seed=seed, device=device)
    if vlm.is_random_init:
        echo(f"WARNING: {model} has random weights: the scores will be chance level, not results")
    kwargs: dict[str, Any] = dict(
        limit=limit, batch_size=batch_size, generate_kwargs={"max_new_tokens": max_new_tokens}, progress=progress
    )
    if suite is not None:
        if split is not None:
            raise ValueError("--split applies to one --benchmark; a suite uses each benchmark's split")
        summary = runner.run_suite(vlm, suite, parsed_roots, out, **kwargs)
        return summary["results"], summary
    result = runner.evaluate(vlm, benchmark, root_for(benchmark, parsed_roots), out, split=split, **kwargs)
    return [result], None
