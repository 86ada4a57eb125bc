"""The command line: every command declared once, training commands one per registered stage."""

import pytest
from typer.testing import CliRunner

from aerith.cli import TRAIN_COMMANDS, app


def test_training_commands_are_the_registered_stages():
    from aerith.train.stages import STAGES

    assert set(TRAIN_COMMANDS) == set(STAGES)
    names = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]
    assert len(names) == len(set(names)), names
    for stage in STAGES:
        result = CliRunner().invoke(app, [stage, "--help"])
        assert result.exit_code == 0 and "--resume" in result.output and "--set" in result.output


def test_a_recipe_for_another_stage_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stage: sft\nmodel: {init: aerith-tiny}\ndata: {train: [{name: synthrs, root: nowhere}]}\n")
    result = CliRunner().invoke(app, ["align", str(recipe)])
    assert result.exit_code == 2 and "not `aerith align`" in result.output, result.output


def _callbacks():
    yield from (info.callback for info in app.registered_commands)
    for group in app.registered_groups:
        yield from (info.callback for info in group.typer_instance.registered_commands)


def test_every_path_and_model_argument_refuses_an_empty_value():
    """An empty value (an unset shell variable) was read as the current folder: `merge-lora RUN --out ''`
    swapped '.' (traceback, temp folder left behind), `scan`/`eval --out ''` wrote into it, `serve --allow-dir ''`
    served it."""
    import typing
    from pathlib import Path

    from aerith.cli import _model, _path

    checked = 0
    for callback in _callbacks():
        for name, hint in typing.get_type_hints(callback, include_extras=True).items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            base, info = typing.get_args(hint)[:2]
            if base in (Path, Path | None):
                assert info.parser is _path, f"{callback.__name__}: {name}"
                checked += 1
            elif name in ("model", "init"):
                assert info.parser is _model, f"{callback.__name__}: {name}"
                checked += 1
    assert checked >= 25


@pytest.mark.parametrize(
    "args, option",
    [
        (["merge-lora", "run", "--out", ""], "'--out'"),
        (["sft", "r.yaml", "--out-dir", ""], "'--out-dir'"),
        (["sft", "r.yaml", "--init", ""], "'--init'"),
        (["eval", "aerith-tiny", "--benchmark", "synthrs-cls", "--root", "d", "--out", ""], "'--out'"),
        (["scan", "aerith-tiny", "", "--task", "cap", "--out", "o"], "'raster'"),
        (["predict", "", "x.png", "[CAP] Describe this image."], "'model'"),
        (["data", "stats", "synthrs", ""], "'root'"),
    ],
)
def test_an_empty_path_is_an_error_naming_the_option_and_writes_nothing(tmp_path, monkeypatch, args, option):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and option in result.output and "is empty" in result.output, result.output
    assert not any(tmp_path.iterdir())


def test_bench_refuses_a_folder_as_results_file_and_a_folder_without_scripts(tmp_path):
    """--out DIR was an IsADirectoryError traceback; a --dir without bench_*.py scripts ran nothing, exit 0, silently."""
    scripts = tmp_path / "benchmarks"
    scripts.mkdir()
    empty = CliRunner().invoke(app, ["bench", "--dir", str(scripts)])
    assert empty.exit_code == 2 and empty.output.startswith(f"error: {scripts}: no bench_*.py scripts to run"), empty.output
    (scripts / "bench_tiny.py").write_text('"""A tiny benchmark."""\n\n\ndef run():\n    return {"x": 1}\n')
    (tmp_path / "results").mkdir()
    result = CliRunner().invoke(app, ["bench", "--dir", str(scripts), "--out", str(tmp_path / "results")])
    assert result.exit_code == 2 and result.output.startswith(f"error: --out {tmp_path / 'results'} is a folder"), result.output
    assert not any((tmp_path / "results").iterdir())
    done = CliRunner().invoke(app, ["bench", "--dir", str(scripts), "--out", str(tmp_path / "R.md")])
    assert done.exit_code == 0 and "A tiny benchmark." in (tmp_path / "R.md").read_text(), done.output


def test_eval_says_how_many_lines_of_a_predictions_file_were_not_records(tmp_path):
    """They were counted in results.json only: the summary line read as if every line had been read."""
    from aerith.data.synthrs import generate

    generate(tmp_path / "syn", 12, 64, 0)
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"id": "x", "answer": "a"}\n{"id": \n{"id": "x", "answer": "b"}\n')
    result = CliRunner().invoke(app, ["eval", "--benchmark", "synthrs-cls", "--root", str(tmp_path / "syn"), "--predictions", str(predictions)])
    assert result.exit_code == 0 and ", 1 malformed line(s), 1 duplicate id(s); results in" in result.output, result.output


@pytest.mark.parametrize("root", ["", "synthrs=", "synthrs-cls= "])
def test_eval_refuses_a_root_that_names_no_folder(tmp_path, monkeypatch, root):
    """--root '' was read as the current folder (then: 'scene_graphs.json: not found', after the model loaded)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["eval", "aerith-tiny", "--benchmark", "synthrs-cls", "--root", root, "--out", "run"])
    assert result.exit_code == 2 and result.output.strip() == f"error: --root {root!r} names no folder; give --root DIR or --root NAME=DIR", result.output
    assert not any(tmp_path.iterdir())


def test_predict_names_the_option_of_a_bad_answer_length():
    result = CliRunner().invoke(app, ["predict", "aerith-tiny", "no-image.png", "[CAP] Describe this image.", "--max-new-tokens", "0"])
    assert result.exit_code == 2 and result.output.strip() == "error: --max-new-tokens must be >= 1, got 0", result.output


def test_the_command_line_prints_aerith_warnings_as_one_line(tmp_path):
    """A counted skip while training (warnings.warn deep in a loader) reads like the data commands' lines."""
    import subprocess
    import sys

    script = (
        "import warnings, aerith.cli as cli\n"
        "from aerith.data.errors import SkippedRecordsWarning\n"
        "cli.app.command('warn-twice')(lambda: (warnings.warn('rsicd: 2 bad record(s) skipped', SkippedRecordsWarning),"
        " warnings.warn_explicit('old API', DeprecationWarning, 'elsewhere.py', 7)))\n"
        "warnings.simplefilter('always')\n"
        "cli.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, "warn-twice"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "warning: rsicd: 2 bad record(s) skipped" in lines  # one line, no source path or code line
    assert not any("SkippedRecordsWarning" in line for line in lines)
    assert any(line.startswith("elsewhere.py:7: DeprecationWarning: old API") for line in lines)  # others as Python writes them
