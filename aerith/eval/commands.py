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
        if not str(folder if sep and name.lower() in names else value).strip():  # Path("") is the current folder
            raise ValueError(f"--root {value!r} names no folder; give --root DIR or --root NAME=DIR")
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


def check_roots(benchmark: str | None, suite: str | None, roots: dict[str, Path], split: str | None) -> None:
    """Check, before any model loads, that each benchmark to run has an existing dataset folder and the split asked for.

    The loaders check this too, but only once the model is loaded (minutes for a 7B model), and in a
    suite a missing folder was then one benchmark's failure (exit 1) rather than a typo refused at once.

    Raises:
        ValueError, KeyError, DataError: a --root for no benchmark of the suite, a benchmark without
            --root, a folder that does not exist or is a file, a split the dataset does not have.
    """
    from aerith.data.datasets.base import check_root
    from aerith.data.registry import get_dataset_class

    if suite is not None:
        benches = get_suite(suite)
        known = {b.name for b in benches} | {b.dataset for b in benches}
        unknown = sorted(set(roots) - known)
        if unknown:
            raise ValueError(f"--root given for {', '.join(unknown)}, not in suite {suite!r} ({', '.join(b.name for b in benches)})")
        benches = [b for b in benches if b.name in roots or b.dataset in roots]
    else:
        benches = [get_benchmark(benchmark)]
    for bench in benches:
        cls = get_dataset_class(bench.dataset)
        # root_for: a --root NAME=DIR for another benchmark leaves this one without, and says so
        check_root(Path(root_for(bench.name, roots)).expanduser(), bench.dataset)
        wanted = split or bench.split
        if wanted not in cls.splits:
            raise ValueError(f"--split {wanted!r}: {bench.dataset} has no such split; its splits: {', '.join(cls.splits)}")


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


def check_writable(path: Path, what: str) -> None:
    """Fail early, before any model loads, when ``path`` (a folder to write into) cannot be written.

    Creates the folder if needed (it is about to be written anyway) and a file in it, removed at once.

    Raises:
        ValueError: naming ``what`` (the option), the path and why.
    """
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".aerith-write-check-"):
            pass
    except OSError as err:
        raise ValueError(f"{what} {path}: cannot write there ({err.strerror or err})") from err


def _model_name(model: str) -> str:
    """The name the loaded model will carry: a preset's name, else its resolved checkpoint folder."""
    from aerith.infer.load import all_presets
    from aerith.runs import resolve_checkpoint

    if model in all_presets():
        return model
    if not Path(model).exists():
        raise FileNotFoundError(f"{model!r} is neither a preset ({', '.join(all_presets())}) nor an existing model or run folder")
    return str(resolve_checkpoint(Path(model)))


def run_eval(
    model: str | None,
    *,
    benchmark: str | None,
    suite: str | None,
    roots: Sequence[str],
    out: Path | None,
    split: str | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    predictions: Path | None = None,
    box_format: str | None = None,
    write_prompts_to: Path | None = None,
    seed: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    processes: Any = None,
    echo: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Run one of the `aerith eval` modes (see the command's help).

    Under ``accelerate launch`` every process calls this; the samples are shared among them
    and the main process writes the results (see :mod:`aerith.eval.distributed`).
    Everything a user can get wrong (names, roots, folders, the device, a run folder of
    another run) is checked before the model loads.

    ``batch_size`` (16), ``max_new_tokens`` (64), ``seed`` (0), ``device`` and ``overwrite``
    belong to running a model, ``box_format`` ("auto") to scoring predictions: given in
    another mode they are refused, not ignored.

    Returns:
        ``(results, suite)``: the results of each benchmark scored, and the suite summary
        (``None`` outside ``--suite``).

    Raises:
        ValueError, KeyError, FileNotFoundError, DataError: bad arguments or data.
    """
    from aerith.eval import runner
    from aerith.eval.distributed import Processes

    procs: Processes = processes or Processes.from_environment()
    if (benchmark is None) == (suite is None):
        raise ValueError("give exactly one of --benchmark NAME or --suite NAME (see --list)")
    if suite is not None:
        get_suite(suite)
        if predictions is not None or write_prompts_to is not None:
            raise ValueError("--predictions and --write-prompts take one --benchmark, not a --suite")
        if split is not None:
            raise ValueError("--split applies to one --benchmark; a suite uses each benchmark's split")
    else:
        get_benchmark(benchmark)  # an unknown name fails before any loading
    model_only = {"--batch-size": batch_size, "--max-new-tokens": max_new_tokens, "--seed": seed, "--device": device,
                  "--overwrite": overwrite or None}
    if predictions is not None or write_prompts_to is not None:
        mode = "--predictions" if predictions is not None else "--write-prompts"
        given = [flag for flag, value in model_only.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to running a model, not to {mode}")
    if box_format is not None and predictions is None:
        raise ValueError("--box-format applies to scoring --predictions")
    batch_size = 16 if batch_size is None else batch_size
    max_new_tokens = 64 if max_new_tokens is None else max_new_tokens
    seed = 0 if seed is None else seed
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    parsed_roots = parse_roots(roots, benchmark)

    if write_prompts_to is not None:
        if model is not None or predictions is not None:
            raise ValueError("--write-prompts takes no MODEL and no --predictions")

        def prompts_only() -> int:
            check_roots(benchmark, None, parsed_roots, split)  # before a folder is made for the prompts
            check_writable(write_prompts_to.parent, "--write-prompts")
            return runner.write_prompts(benchmark, root_for(benchmark, parsed_roots), write_prompts_to, split=split, limit=limit)

        n = procs.on_main(prompts_only)
        if procs.main:
            echo(f"wrote {n} prompts to {write_prompts_to}; answer them as {{\"id\", \"answer\"}} lines and score with --predictions")
        return [], None
    if predictions is not None:
        if model is not None:
            raise ValueError("give either MODEL or --predictions FILE, not both")

        def score_only() -> dict[str, Any]:
            from aerith.parsing.boxes import FORMATS

            if (box_format or "auto") not in FORMATS:  # before the --out folder is made
                raise ValueError(f"--box-format {box_format!r} is not a box format; valid formats: {', '.join(FORMATS)}")
            check_roots(benchmark, None, parsed_roots, split)
            target = out if out is not None else predictions.with_name(f"{predictions.stem}-eval")
            if (target / runner.RUN_INFO).is_file():
                raise ValueError(f"--out {target} holds a model's evaluation run ({runner.RUN_INFO}): its results are not replaced by another file's scores; choose another --out")
            if predictions.is_file():
                check_writable(target, "--out")
            return runner.score_predictions(
                predictions, benchmark, root_for(benchmark, parsed_roots), target, split=split, limit=limit,
                box_format=box_format or "auto",
            )

        result = procs.on_main(score_only)
        if procs.main:
            for warning in result.get("warnings", []):
                echo(f"WARNING: {warning}")
        return ([result] if procs.main else []), None

    if model is None:
        raise ValueError("give a MODEL (preset name or saved folder), or --predictions FILE")
    if out is None:
        raise ValueError("give --out DIR, the run folder")
    if suite is None and not parsed_roots:
        raise ValueError(f"no --root for benchmark {benchmark!r}: add --root DIR")
    check_roots(benchmark, suite, parsed_roots, split)
    from aerith.eval.fingerprint import model_fingerprint
    from aerith.infer.facade import check_device
    from aerith.infer.load import load_vlm

    if procs.world > 1 and device in (None, "cuda"):
        device = str(procs.device)  # each process on its own GPU (or the CPU)
    check_device(device)
    generate_kwargs = {"max_new_tokens": max_new_tokens}
    name = _model_name(model)
    runs = {benchmark: out} if suite is None else {
        b.name: out / b.name for b in get_suite(suite) if b.name in parsed_roots or b.dataset in parsed_roots
    }

    def preflight() -> dict[str, Any]:
        check_writable(out, "--out")
        fingerprint = model_fingerprint(model, seed=seed)  # weights hashed once, on the main process
        for bench_name, folder in runs.items():
            if overwrite:
                continue
            bench = get_benchmark(bench_name)
            info = runner.run_info(bench.name, split or bench.split, name, fingerprint, generate_kwargs)
            runner.check_resumable(folder, info)
        return fingerprint

    fingerprint = procs.on_main(preflight)
    try:
        vlm = load_vlm(model, seed=seed, device=device)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as err:  # noqa: BLE001 - any failure to load the given model is a bad model, said plainly
        raise ValueError(f"cannot load model {model!r}: {type(err).__name__}: {err}") from err
    if vlm.is_random_init and procs.main:
        echo(f"WARNING: {model} has random weights: the scores will be chance level, not results")
    kwargs: dict[str, Any] = dict(
        limit=limit, batch_size=batch_size, generate_kwargs=generate_kwargs, progress=progress, model_name=name,
        model_fingerprint=fingerprint, overwrite=overwrite, processes=procs,
    )
    if suite is not None:
        summary = runner.run_suite(vlm, suite, parsed_roots, out, **kwargs)
        return (summary["results"] if procs.main else []), (summary if procs.main else None)
    result = runner.evaluate(vlm, benchmark, root_for(benchmark, parsed_roots), out, split=split, **kwargs)
    return ([result] if procs.main else []), None
