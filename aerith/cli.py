"""The `aerith` command line. Each command is a typed function; work is done in the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="aerith",
    help="Build, train, evaluate and serve vision-language models for remote-sensing imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: generate SynthRS, convert, inspect.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _parse_bands(bands: str | None) -> list[int] | None:
    if bands is None:
        return None
    try:
        return [int(b) for b in bands.split(",")]
    except ValueError as err:
        raise typer.BadParameter(f"--bands takes comma-separated 0-based band indices such as 3,2,1, got {bands!r}") from err


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="A preset name (aerith-tiny, aerith-7b, ...) or a saved model folder.")],
    image: Annotated[Path, typer.Argument(help="Image file: JPEG, PNG, TIFF or multi-band GeoTIFF.")],
    prompt: Annotated[str, typer.Argument(help='Instruction with its task token, e.g. "[CAP] Describe this image."')],
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
def bench(
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this benchmark (repeatable).")] = None,
    bench_dir: Annotated[Path, typer.Option("--dir", help="Folder of bench_*.py scripts.")] = Path("benchmarks"),
    out: Annotated[Path | None, typer.Option(help="Results file (default: DIR/RESULTS.md).")] = None,
) -> None:
    """Run the speed and memory benchmarks and rewrite benchmarks/RESULTS.md."""
    from aerith.bench import run_benchmarks

    try:
        run_benchmarks(bench_dir, out or bench_dir / "RESULTS.md", only=only, echo=typer.echo)
    except (FileNotFoundError, KeyError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


def main() -> None:
    app()


if __name__ == "__main__":
    main()
