"""The `aerith` command line. Each command is a typed function; work is done in the library."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Annotated

import typer

from aerith.ablate.runner import AblationSettings

app = typer.Typer(
    name="aerith",
    help="Build, train, evaluate and serve vision-language models for remote-sensing imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Dataset tools.", no_args_is_help=True)


def _path(value: str | Path) -> Path:
    """A path given on the command line; an empty one (an unset shell variable) is refused, not read as ``.``."""
    if isinstance(value, Path):  # a default
        return value
    if not value.strip():
        raise typer.BadParameter("is empty: name a file or folder")
    return Path(value)


def _model(value: str) -> str:
    """A model given on the command line (preset or folder); an empty one is refused, not read as ``.``."""
    if not value.strip():
        raise typer.BadParameter("is empty: name a preset (aerith-tiny, ...) or a saved model or run folder")
    return value



def _host(value: str) -> str:
    """An address to listen on; an empty one (an unset shell variable) is refused: uvicorn reads it as every interface."""
    if not value.strip():
        raise typer.BadParameter("is empty: give an address, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    return value


def _password(value: str) -> str:
    """A login password; an empty one is refused: the page read it as no password and served without a login."""
    if not value.strip():
        raise typer.BadParameter("is empty; leave it out to serve the page without a login")
    return value


def _serve_settings(model: str, renamed: dict[str, str] | None = None, **values):  # noqa: ANN003, ANN202
    """``ServeSettings`` from the command's options; an error about a field the command calls otherwise
    (``aerith ui --max-upload-mb`` is ``max_body_mb``) names the option typed, not the field.

    An API key or password variable set but empty (``export AERITH_API_KEY=$KEY`` with KEY unset) is refused: click
    reads it as unset, which served without a key or login without a word.
    """
    import re

    from aerith.serve.settings import ServeSettings

    for envvar, field, without in (("AERITH_API_KEY", "api_key", "a key"), ("AERITH_UI_PASSWORD", "password", "a login")):
        if field in values and values[field] is None and os.environ.get(envvar) == "":
            raise ValueError(f"--{field.replace('_', '-')}: {envvar} is set but empty; unset it to serve without {without}")
    values.pop("password", None)
    try:
        return ServeSettings(model, **values)
    except ValueError as err:
        if not renamed:
            raise
        pattern = r"(?<![\w-])(" + "|".join(map(re.escape, renamed)) + r")(=| )"
        raise ValueError(re.sub(pattern, lambda m: renamed[m.group(1)] + m.group(2), str(err))) from err


def _prompt(value: str) -> str:
    """A prompt; an empty one (an unset shell variable) is refused: the model answered nothing in particular."""
    if not value.strip():
        raise typer.BadParameter('is empty: give an instruction with its task token, e.g. "[CAP] Describe this image."')
    return value


def _parse_bands(bands: str | None) -> list[int] | None:
    if bands is None:
        return None
    try:
        return [int(b) for b in bands.split(",")]
    except ValueError as err:
        raise typer.BadParameter(f"--bands takes comma-separated 0-based band indices such as 3,2,1, got {bands!r}") from err


@app.command()
def predict(
    model: Annotated[str, typer.Argument(parser=_model, help="A preset name (aerith-tiny, aerith-7b, ...) or a saved model folder.")],
    image: Annotated[Path, typer.Argument(parser=_path, help="Image file: JPEG, PNG, TIFF or multi-band GeoTIFF.")],
    prompt: Annotated[str, typer.Argument(parser=_prompt, help='Instruction with its task token, e.g. "[CAP] Describe this image."')],
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 64,
    bands: Annotated[str | None, typer.Option(help="Bands to show as RGB, 0-based, e.g. 3,2,1.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of a random-weight preset.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present).")] = None,
) -> None:
    """Ask a model about one image and print its answer."""
    from aerith.data.errors import DataError
    from aerith.infer.commands import predict as run_predict

    try:
        answer, warning = run_predict(
            model, image, prompt, max_new_tokens=max_new_tokens, bands=_parse_bands(bands), seed=seed, device=device
        )
    except (DataError, FileNotFoundError, KeyError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    if warning:
        typer.echo(f"WARNING: {warning}", err=True)
    typer.echo(answer)


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option(parser=_path, help="Run folder (must be empty, or an earlier quickstart with --overwrite).")] = Path("quickstart"),
    minutes: Annotated[float, typer.Option(help="Wall-clock budget; the training stages scale with it.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seeds the scenes, the model and the data order.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier quickstart run in --out.")] = False,
    scenes: Annotated[int | None, typer.Option(help="SynthRS scenes (default: 100 per budget minute, at least 200).")] = None,
) -> None:
    """Generate SynthRS, train aerith-tiny (align, sft, scst), evaluate all four tasks and write a report."""
    # Before torch loads. On 2 cores, OpenMP threads that spin while they wait slowed the tiny model's
    # training about 20-fold as soon as one other busy process shared the machine (align: 37 steps
    # instead of ~900); threads that sleep keep that case at full pace (3,503 SFT steps) and cost a
    # third on an idle machine (3,360 SFT steps against 5,081). A value the user set is kept:
    # OMP_WAIT_POLICY=ACTIVE is faster on a machine with nothing else running.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from aerith.quickstart import QuickstartSettings, run_quickstart
    from aerith.quickstart.report import table_markdown

    try:
        settings = QuickstartSettings(out=out, minutes=minutes, seed=seed, overwrite=overwrite, scenes=scenes)
        result = run_quickstart(settings)
    except (OSError, ValueError) as err:  # OSError: an --out that cannot be cleared or written
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo("\n".join(table_markdown(result.rows)))
    verdict = "every learning check passed" if result.passed else "some learning checks FAILED (see the table)"
    typer.echo(f"\n{verdict}; {result.total_seconds / 60:.1f} min. Report: {result.report}")


_ABLATION = AblationSettings()  # the CLI's defaults are the settings' own


@app.command()
def ablate(
    out: Annotated[Path, typer.Option(parser=_path, help="Output folder; an earlier ablation there is continued.")] = Path("ablation"),
    quick: Annotated[bool, typer.Option(help="The smallest grid at a few steps (plumbing only; takes no step, seed or scene option).")] = False,
    seeds: Annotated[str | None, typer.Option(help=f"Comma-separated seeds (default {','.join(map(str, _ABLATION.seeds))}).")] = None,
    scenes: Annotated[int | None, typer.Option(help=f"SynthRS scenes per seed (default {_ABLATION.scenes}).")] = None,
    sft_steps: Annotated[int | None, typer.Option(help=f"SFT optimizer steps per variant (default {_ABLATION.sft_steps}).")] = None,
    scst_steps: Annotated[int | None, typer.Option(help=f"SCST optimizer steps per reward-mix variant (default {_ABLATION.scst_steps}).")] = None,
    align_steps: Annotated[int | None, typer.Option(help=f"Align optimizer steps per variant (default {_ABLATION.align_steps}).")] = None,
    box_fit_steps: Annotated[int | None, typer.Option(help=f"Box-head fit steps per variant, recipes with a box head (default {_ABLATION.box_fit_steps}).")] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Evaluate the first N test samples per task (default: all).")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this variant (repeatable).")] = None,
) -> None:
    """Train and evaluate variants of the quickstart recipe on SynthRS over seeds; write a table and a plot."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as in quickstart: spinning threads stall a shared CPU
    from aerith.ablate.runner import parse_seeds, run_ablation

    budget = {"--seeds": seeds, "--scenes": scenes, "--sft-steps": sft_steps, "--scst-steps": scst_steps,
              "--align-steps": align_steps, "--box-fit-steps": box_fit_steps}
    try:
        if quick:
            given = [flag for flag, value in budget.items() if value is not None]
            if given:
                raise ValueError(f"--quick has its own budget; drop {', '.join(given)}")
            settings = AblationSettings.quick_settings(out, only=tuple(only or ()), eval_limit=eval_limit)
        else:
            settings = AblationSettings(
                out=out, seeds=tuple(parse_seeds(seeds)) if seeds is not None else _ABLATION.seeds,
                scenes=_ABLATION.scenes if scenes is None else scenes,
                sft_steps=_ABLATION.sft_steps if sft_steps is None else sft_steps,
                scst_steps=_ABLATION.scst_steps if scst_steps is None else scst_steps,
                align_steps=_ABLATION.align_steps if align_steps is None else align_steps,
                box_fit_steps=_ABLATION.box_fit_steps if box_fit_steps is None else box_fit_steps,
                eval_limit=eval_limit, only=tuple(only or ()),
            )
        result = run_ablation(settings, echo=typer.echo)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    except OSError as err:  # an --out that cannot be made or written (one under a file was a traceback)
        typer.echo(f"error: --out {out}: cannot write {err.filename or 'there'} ({err.strerror or err})", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"table: {result.table}\nplot: {result.plot}")


@app.command()
def bench(
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this benchmark (repeatable).")] = None,
    bench_dir: Annotated[Path, typer.Option("--dir", parser=_path, help="Folder of bench_*.py scripts.")] = Path("benchmarks"),
    out: Annotated[Path | None, typer.Option(parser=_path, help="Results file (default: DIR/RESULTS.md).")] = None,
) -> None:
    """Run the speed and memory benchmarks and rewrite benchmarks/RESULTS.md."""
    from aerith.bench import discover, run_benchmarks

    results = out or bench_dir / "RESULTS.md"
    try:
        if not discover(bench_dir):
            raise FileNotFoundError(f"{bench_dir}: no bench_*.py scripts to run (pass --dir the benchmarks folder)")
        if results.is_dir():
            raise IsADirectoryError(f"--out {results} is a folder; give the results file, e.g. {results / 'RESULTS.md'}")
        run_benchmarks(bench_dir, results, only=only, echo=typer.echo)
    except (OSError, KeyError) as err:  # OSError: a results file that cannot be read or written
        typer.echo(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", err=True)
        raise typer.Exit(2) from err


@app.command()
def serve(
    model: Annotated[str, typer.Argument(parser=_model, help="A preset (aerith-tiny, ...), a saved model folder or a run folder.")],
    host: Annotated[str, typer.Option(parser=_host, help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="AERITH_API_KEY", help="Require 'Authorization: Bearer KEY' (all but /health).")] = None,
    allow_dir: Annotated[Path | None, typer.Option(parser=_path, help="Read local image paths under this folder (else only data URLs).")] = None,
    max_batch: Annotated[int, typer.Option(help="Most requests generated together.")] = 16,
    batch_window_ms: Annotated[float, typer.Option(help="Longest a request waits for others still being prepared, to batch with them.")] = 10.0,
    max_body_mb: Annotated[float, typer.Option(help="Larger request bodies get 413.")] = 20.0,
    max_image_pixels: Annotated[int, typer.Option(help="Larger images (width x height) get 400.")] = 25_000_000,
    max_queue: Annotated[int, typer.Option(help="More waiting requests get 429 with Retry-After.")] = 256,
    max_tokens: Annotated[int, typer.Option(help="Answer length when a request gives none.")] = 256,
    served_name: Annotated[str | None, typer.Option(help="The model's id in the API (default: MODEL as given).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of a random-weight preset.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present).")] = None,
    ui: Annotated[bool, typer.Option("--ui", help="Also serve the web page at /ui, sharing the model and queue (needs the ui extra).")] = False,
) -> None:
    """Serve a model over HTTP: OpenAI-compatible /v1/chat/completions, task endpoints, /health, /metrics."""
    from aerith.serve.commands import ServeError, serve as run_serve

    try:
        settings = _serve_settings(
            model, host=host, port=port, api_key=api_key, allow_dir=allow_dir, max_batch=max_batch,
            batch_window_ms=batch_window_ms, max_body_mb=max_body_mb, max_image_pixels=max_image_pixels,
            max_queue=max_queue, max_tokens=max_tokens, served_name=served_name, seed=seed, device=device,
        )
        if ui:
            from aerith.ui.commands import serve_with_ui

            serve_with_ui(settings)
        else:
            run_serve(settings)
    except (ServeError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


@app.command("ui")
def ui_(
    model: Annotated[str, typer.Argument(parser=_model, help="A preset (aerith-tiny, ...), a saved model folder or a run folder.")],
    host: Annotated[str, typer.Option(parser=_host, help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    password: Annotated[str | None, typer.Option(envvar="AERITH_UI_PASSWORD", parser=_password, help="Ask for this password on a login page.")] = None,
    max_batch: Annotated[int, typer.Option(help="Most questions generated together.")] = 16,
    max_upload_mb: Annotated[float, typer.Option(help="Larger uploads are refused.")] = 20.0,
    max_image_pixels: Annotated[int, typer.Option(help="Larger images (width x height) are refused with a message.")] = 25_000_000,
    max_tokens: Annotated[int, typer.Option(help="Start value of the page's answer-length slider.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of a random-weight preset.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present).")] = None,
) -> None:
    """Serve the web page alone: upload a scene, ask (chat, classify, question, caption, ground), see the boxes."""
    from aerith.serve.commands import ServeError
    from aerith.ui.commands import run_ui

    try:
        settings = _serve_settings(
            model, {"max_body_mb": "--max-upload-mb"}, host=host, port=port, max_batch=max_batch, max_body_mb=max_upload_mb,
            max_image_pixels=max_image_pixels, max_tokens=max_tokens, seed=seed, device=device, password=password,
        )
        run_ui(settings, password=password)
    except (ServeError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


def _train_command(stage: str, recipe: Path, overrides, out_dir, init, max_steps, resume) -> None:
    from aerith.data.errors import DataError
    from aerith.train.commands import build_config, run_stage
    from aerith.train.loop import NonFiniteLossError

    try:
        config = build_config(stage, recipe, overrides, out_dir=out_dir, init=init, max_steps=max_steps)
        result = run_stage(config, resume=resume)
    except NonFiniteLossError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(3) from err
    except (DataError, FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        typer.echo(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", err=True)
        raise typer.Exit(2) from err
    if result is not None and result.main_process:  # once under accelerate launch
        last = f", val loss {result.val_loss[-1][1]:.4f}" if result.val_loss else ""
        if result.val_metrics:
            last = ", " + ", ".join(f"{k} {v:.4f}" for k, v in result.val_metrics[-1][1].items())
        typer.echo(f"{stage}: {result.steps} steps{last}; model in {result.final_dir}")


_Recipe = Annotated[Path, typer.Argument(parser=_path, help="YAML recipe, e.g. configs/sft-aerith-tiny.yaml.")]
_Set = Annotated[list[str] | None, typer.Option("--set", help="Override a recipe field: --set optim.lr=1e-4 (repeatable).")]
_OutDir = Annotated[Path | None, typer.Option(parser=_path, help="Run folder (overrides out_dir).")]
_Init = Annotated[str | None, typer.Option(parser=_model, help="Start from this preset or saved folder (overrides model.init).")]
_Steps = Annotated[int | None, typer.Option(help="Optimizer steps (overrides schedule.max_steps).")]
_Resume = Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint of the run folder.")]


# One declaration for every training stage: the names are aerith.train.stages.STAGES (tests/test_cli.py keeps
# them equal); the help lives here so that `aerith --help` does not import torch.
TRAIN_COMMANDS = {
    "align": "Stage 1: train the DINOv3 -> CLIP head (label-free cosine distance to CLIP's patch features).",
    "sft": "Stage 2: multi-task instruction tuning (loss on answer tokens only). Runs under `accelerate launch` too.",
    "scst": "Stage 3: self-critical RL on captions (CIDEr-D + SG-F1 - hallucination rewards). Start from an SFT checkpoint.",
}


def _stage_command(stage: str):
    def command(
        recipe: _Recipe, overrides: _Set = None, out_dir: _OutDir = None, init: _Init = None, max_steps: _Steps = None,
        resume: _Resume = False,
    ) -> None:
        _train_command(stage, recipe, overrides, out_dir, init, max_steps, resume)

    command.__doc__ = TRAIN_COMMANDS[stage]
    # the stage's own recipe as the example (every stage showed the sft recipe, which `aerith align` refuses)
    command.__annotations__["recipe"] = Annotated[
        Path, typer.Argument(parser=_path, help=f"YAML recipe, e.g. configs/{stage}-aerith-tiny.yaml.")
    ]
    return command


for _stage in TRAIN_COMMANDS:
    app.command(_stage)(_stage_command(_stage))


@app.command("merge-lora")
def merge_lora(
    source: Annotated[Path, typer.Argument(parser=_path, help="A run folder (uses checkpoint-final) or a checkpoint folder.")],
    out: Annotated[Path, typer.Option(parser=_path, help="Folder for the merged model (absent or empty).")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a saved model already in --out.")] = False,
) -> None:
    """Fold LoRA adapters into the language model; the result loads with aerith.load_vlm."""
    from aerith.train.merge import merge_lora_checkpoint

    try:
        path = merge_lora_checkpoint(source, out, overwrite=overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"merged model in {path}")


@app.command("fit-box-head")
def fit_box_head(
    model: Annotated[str, typer.Argument(parser=_model, help="A saved model or run folder whose config has box_head: true (after sft/scst).")],
    dataset: Annotated[str, typer.Option(help="Grounding dataset, e.g. dior-rsvg, rsvg, synthrs.")],
    root: Annotated[Path, typer.Option(parser=_path, help="The dataset's folder.")],
    out: Annotated[Path, typer.Option(parser=_path, help="Run folder: checkpoint-final/ (the model) and box_fit.json (settings and log).")],
    split: Annotated[str, typer.Option(help="Split to fit on.")] = "train",
    val_split: Annotated[str | None, typer.Option(help="Report Acc@0.5 on this split's expressions.")] = None,
    option: Annotated[list[str] | None, typer.Option(help="Dataset option KEY=VALUE (repeatable); synthrs needs task=vg.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 1500,
    batch_size: Annotated[int, typer.Option(min=1, help="Expressions per step.")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (cosine decay to a tenth).")] = 1e-3,
    flips: Annotated[str, typer.Option(help="Comma-separated flips of each sample: none, horizontal, vertical, both.")] = "none,horizontal,vertical,both",
    seed: Annotated[int, typer.Option(help="Seeds the minibatch order.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier fit in --out.")] = False,
) -> None:
    """Fit the box head alone on frozen features (encoded once, flipped, many epochs); run it after the last training stage."""
    from aerith.data.commands import parse_options
    from aerith.data.errors import DataError
    from aerith.train.box_fit import BoxFitConfig, run_box_fit

    try:
        options = parse_options(option or [])
        config = BoxFitConfig(steps=steps, batch_size=batch_size, lr=lr, flips=tuple(f.strip() for f in flips.split(",") if f.strip()), seed=seed)
        info = run_box_fit(
            model, dataset, root, out, config, split=split, val_split=val_split, options=options, overwrite=overwrite,
            log=lambda r: typer.echo(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()), err=True),
        )
    except (DataError, FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        typer.echo(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", err=True)
        raise typer.Exit(2) from err
    last = info["log"][-1]
    val = f", val Acc@0.5 {last['val_acc@0.5']:.3f}" if "val_acc@0.5" in last else ""
    typer.echo(f"box head: {info['steps']} steps on {info['samples']} samples{val}; model in {Path(out) / 'checkpoint-final'}")


@app.command("eval")
def eval_(
    model: Annotated[str | None, typer.Argument(parser=_model, help="Preset name or saved model folder (omit with --predictions).")] = None,
    benchmark: Annotated[str | None, typer.Option(help="Benchmark name (see --list), e.g. dior-rsvg, aid, rsvqa-lr.")] = None,
    suite: Annotated[str | None, typer.Option(help="A suite of benchmarks: 'seed' is the seed's results table.")] = None,
    root: Annotated[list[str] | None, typer.Option(help="Dataset folder: DIR with --benchmark, NAME=DIR per dataset with --suite (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option(parser=_path, help="Run folder; an interrupted run there is resumed. With --predictions default: FILE-eval/.")] = None,
    split: Annotated[str | None, typer.Option(help="Split (default: the benchmark's).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N samples.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per generate call (default 16).")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Longest answer, in tokens (default 64).")] = None,
    predictions: Annotated[Path | None, typer.Option(parser=_path, help='Score this JSONL of {"id", "answer"} lines from another model instead.')] = None,
    box_format: Annotated[str | None, typer.Option(help="How --predictions boxes are written: auto (default), geochat, vhm, lhrs-nova, qwen, pixel, norm, aerith.")] = None,
    write_prompts: Annotated[Path | None, typer.Option(parser=_path, help="Write the benchmark's ids and prompts as JSONL, for another model to answer.")] = None,
    list_benchmarks: Annotated[bool, typer.Option("--list", help="List benchmarks and suites.")] = False,
    seed: Annotated[int | None, typer.Option(help="Seed of a random-weight preset (default 0).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present; under accelerate launch each process's own).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard the answers and results already in --out (of another model or settings) and start over.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Evaluate a model on a benchmark or suite, or score another model's predictions; writes results.md/json.

    Several processes share the samples under `accelerate launch -m aerith.cli eval ...`.
    """
    from rich.console import Console

    from aerith.data.errors import DataError
    from aerith.eval.commands import benchmarks_text, run_eval, summary_table

    if list_benchmarks:
        typer.echo(benchmarks_text())
        return
    try:
        results, suite_summary = run_eval(
            model, benchmark=benchmark, suite=suite, roots=root or [], out=out, split=split, limit=limit,
            batch_size=batch_size, max_new_tokens=max_new_tokens, predictions=predictions, box_format=box_format,
            write_prompts_to=write_prompts, seed=seed, device=device, overwrite=overwrite, progress=progress,
            echo=lambda m: typer.echo(m, err=True),
        )
    except (DataError, FileNotFoundError, KeyError, ValueError, TypeError, OSError) as err:
        typer.echo(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", err=True)
        raise typer.Exit(2) from err
    if results:
        Console().print(summary_table(results))
    for r in results:
        c = r["counts"]
        # a --predictions file's lines that are not a record, and ids given twice: counted in results.json, said here too
        bad = "".join(f", {c[k]} {what}" for k, what in (("bad_lines", "malformed line(s)"), ("duplicates", "duplicate id(s)")) if c.get(k))
        typer.echo(f"{r['benchmark']}: {c['samples']} samples, {c['missing']} missing, {c['extra']} extra, "
                   f"{c['unparsable']} unparsable{bad}; results in {Path(r['run_dir']) / 'results.md'}")
    if suite_summary is not None:
        for name, dataset in suite_summary["missing"].items():
            typer.echo(f"not run: {name} (no --root {dataset}=DIR)")
        for name, err in suite_summary["failed"].items():
            typer.echo(f"FAILED {name}: {err}", err=True)
        typer.echo(f"suite table in {out / 'results.md'}")
        if suite_summary["failed"]:
            raise typer.Exit(1)


@app.command("scan")
def scan_(
    model: Annotated[str, typer.Argument(parser=_model, help="A preset name (aerith-tiny, instructblip-tiny, ...), a saved model folder or a training run folder.")],
    raster: Annotated[Path, typer.Argument(parser=_path, help="A raster GDAL reads: GeoTIFF (any size), or PNG/JPEG/TIFF (pixel coordinates).")],
    task: Annotated[str, typer.Option(help="vg: boxes of --query; cls: a class per tile from --classes; cap: a caption per tile.")],
    out: Annotated[Path, typer.Option(parser=_path, help="Output folder; an interrupted scan there is resumed.")],
    query: Annotated[str | None, typer.Option(help="What to find (vg), e.g. 'storage tank'.")] = None,
    classes: Annotated[str | None, typer.Option(help="Scene classes (cls), comma-separated: forest,farmland,harbor.")] = None,
    tile: Annotated[int, typer.Option(help="Tile side in raster pixels.")] = 512,
    overlap: Annotated[float, typer.Option(help="Fraction of a tile shared with its neighbour.")] = 0.2,
    bands: Annotated[str | None, typer.Option(help="Bands to show as RGB, 0-based, e.g. 3,2,1.")] = None,
    batch_size: Annotated[int, typer.Option(help="Tiles per generate call.")] = 16,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 64,
    merge: Annotated[str, typer.Option(help="Duplicates across overlaps: nmm (union) or nms (keep one).")] = "nmm",
    match_metric: Annotated[str, typer.Option(help="ios (intersection over smaller) or iou.")] = "ios",
    match_threshold: Annotated[float, typer.Option(help="Match needed for two boxes to be one object.")] = 0.5,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Discard an earlier scan with other settings in --out.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of a random-weight preset.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Scan a whole raster tile by tile: GeoPackage, GeoJSON, class map, quicklook and manifest in --out."""
    from aerith.data.errors import DataError
    from aerith.geo import MissingGeoExtraError, ScanConfig
    from aerith.geo.commands import scan_command

    echo = lambda m: typer.echo(m, err=True)  # noqa: E731
    try:
        config = ScanConfig(
            task=task, query=query, classes=tuple(classes.split(",")) if classes is not None else None, tile=tile,
            overlap=overlap, bands=_parse_bands(bands), batch_size=batch_size, max_new_tokens=max_new_tokens,
            merge=merge, match_metric=match_metric, match_threshold=match_threshold,
        )
        result = scan_command(model, raster, config, out, overwrite=overwrite, seed=seed, device=device, progress=progress, echo=echo)
    except KeyboardInterrupt as err:
        echo(f"interrupted: finished tiles are kept in {out / 'journal'}; run the same command again to resume")
        raise typer.Exit(130) from err
    except (DataError, OSError, KeyError, ValueError, MissingGeoExtraError) as err:  # OSError: a file that cannot be read or written
        echo(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}")
        raise typer.Exit(2) from err
    if result is not None:
        t = result.tiles
        found = ", ".join(f"{k} {v}" for k, v in result.results.items() if not isinstance(v, dict))
        typer.echo(
            f"scanned {t['done']} of {t['total']} tiles ({t['skipped_nodata']} nodata, {t['skipped_empty']} empty skipped; "
            f"{t['run_now']} run now); {found}; outputs in {result.out}: {', '.join(p.name for p in result.outputs.values())}"
        )


_DataName = Annotated[str, typer.Argument(help="Dataset name: ucm, aid, dior-rsvg, rsvqa-lr, rsicd, ...")]
_DataRoot = Annotated[Path, typer.Argument(parser=_path, help="The dataset folder as downloaded.")]
_DATA_ERRORS = (KeyError, ValueError, OSError)  # DataError is a ValueError; OSError: an --out that cannot be written
_OnBad = Annotated[
    str, typer.Option("--on-bad", help="raise: stop at the first bad record or unreadable image; skip: leave them out and count them.")
]
_Options = Annotated[
    list[str] | None,
    typer.Option("--option", help="A loader option KEY=VALUE, e.g. task=vg, split_file=DIR/x.txt, verify_images=full (repeatable)."),
]


def _echo_skips(messages: list[str]) -> None:
    for message in messages:
        typer.echo(f"warning: {message}", err=True)


def _data_error(err: Exception) -> typer.Exit:
    """Print a data command's error (a KeyError without its quotes) and give the exit to raise."""
    typer.echo(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", err=True)
    return typer.Exit(2)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(parser=_path, help="Output folder (absent or empty, or a SynthRS folder with --overwrite).")],
    n: Annotated[int, typer.Option(help="Number of scenes.")] = 1000,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives byte-identical files.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes drawing scenes (the output does not depend on it).")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing SynthRS folder.")] = False,
) -> None:
    """Generate SynthRS scenes in the UCM, DIOR-RSVG, RSVQA-LR and RSICD formats, with their scene graphs."""
    from aerith.data.synthrs import generate

    try:
        summary = generate(out, n, size, seed, workers=workers, overwrite=overwrite)
    except (ValueError, OSError) as err:  # OSError: an --out that cannot be made (read-only, /proc)
        raise _data_error(err) from err
    splits = ", ".join(f"{k} {summary.splits.get(k, 0)}" for k in ("train", "val", "test"))
    typer.echo(
        f"wrote {summary.n} scenes of {summary.size} px to {summary.out_dir} in {summary.seconds:.1f} s "
        f"({splits}; {len(summary.classes)} classes, {sum(summary.categories.values())} objects, "
        f"{sum(summary.question_types.values())} questions, {summary.captions} captions, "
        f"{summary.expressions} referring expressions); see {summary.out_dir / 'README.md'}"
    )


@data_app.command("convert")
def data_convert(
    name: _DataName,
    root: _DataRoot,
    out: Annotated[Path, typer.Option(parser=_path, help="JSON file to write.")],
    split: Annotated[
        str | None, typer.Option(help="Split to convert (default: the dataset's: test for rsieval, else train).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="llava (GeoChat_Instruct style) or lhrs (LHRS-Bot).")] = "llava",
    seed: Annotated[int, typer.Option(help="Seed of the phrasing choice.")] = 0,
    on_bad: _OnBad = "raise",
    option: _Options = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out (never a file under ROOT).")] = False,
) -> None:
    """Write a split as instruction JSON; image paths are relative to ROOT."""
    from aerith.data.commands import collect_warnings, convert, parse_options

    try:
        options = parse_options(option or [])
        path, skips = collect_warnings(
            convert, name, root, split, out, fmt=fmt, seed=seed, options=options, on_bad=on_bad, overwrite=overwrite
        )  # type: ignore[arg-type]
    except _DATA_ERRORS as err:
        raise _data_error(err) from err
    _echo_skips(skips)
    typer.echo(f"wrote {path}")


@data_app.command("stats")
def data_stats(
    name: _DataName,
    root: _DataRoot,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    option: _Options = None,
) -> None:
    """Counts per split, class, question type and task; unique captions; unreadable images; problems found."""
    import json

    from rich.console import Console
    from rich.markup import escape

    from aerith.data.commands import parse_options, stats, stats_table

    try:
        result = stats(name, root, options=parse_options(option or []))
    except _DATA_ERRORS as err:
        raise _data_error(err) from err
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    console = Console()
    console.print(stats_table(result))
    for problem in result["problems"]:
        console.print(f"[yellow]problem:[/yellow] {escape(problem)}", highlight=False)
    if not result["problems"]:
        console.print("no problems found")


@data_app.command("show")
def data_show(
    name: _DataName,
    root: _DataRoot,
    out: Annotated[Path, typer.Option(parser=_path, help="PNG file to write.")],
    index: Annotated[int, typer.Option(help="Sample index in the split.")] = 0,
    split: Annotated[
        str | None, typer.Option(help="Split to read (default: the dataset's: test for rsieval, else train).")
    ] = None,
    on_bad: _OnBad = "raise",
    option: _Options = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out (never a file under ROOT).")] = False,
) -> None:
    """Draw one sample: the image with its box in red, its class, question and answer, or captions below."""
    from aerith.data.commands import collect_warnings, parse_options, show

    try:
        path, skips = collect_warnings(
            show, name, root, split, index, out, options=parse_options(option or []), on_bad=on_bad, overwrite=overwrite
        )  # type: ignore[arg-type]
    except _DATA_ERRORS as err:
        raise _data_error(err) from err
    _echo_skips(skips)
    typer.echo(f"wrote {path}")


# Registered last, and only once it has commands, so --help never lists an empty group.
if data_app.registered_commands:
    app.add_typer(data_app, name="data")


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 - warnings' own hook
    """Aerith's own warnings (a counted skip, a random-init model) as one line; others as Python writes them."""
    if os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep) or category.__module__.startswith("aerith"):
        return f"warning: {message}\n"
    return _PYTHON_FORMAT(message, category, filename, lineno, line)


_PYTHON_FORMAT = warnings.formatwarning


def main() -> None:
    warnings.formatwarning = _format_warning  # the command line's process only; importing aerith changes nothing
    app()


if __name__ == "__main__":
    main()
