"""The `aerith` command line. Each command is a typed function; work is done in the library."""

from __future__ import annotations

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
