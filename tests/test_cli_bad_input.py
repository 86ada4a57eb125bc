"""Bad input on the command line: exit 2, one line naming the option, file or field, before any model loads."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aerith.cli import app


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a command gets as far as loading a model."""
    import aerith.infer.commands
    import aerith.infer.load

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(aerith.infer.load, "load_vlm", refuse)
    monkeypatch.setattr(aerith.infer.commands, "load_vlm", refuse)  # `aerith predict` imported it by name


@pytest.mark.parametrize(
    "roots, extra, expected",
    [
        (["{tmp}/nowhere"], [], "nowhere: not found"),
        (["{tmp}/a-file"], [], "a-file: is a file"),
        (["{tmp}/data"], ["--split", "tset"], "--split 'tset'"),
        (["aid={tmp}/data"], [], "no --root for benchmark 'rsvqa-lr'"),
    ],
)
def test_eval_refuses_a_bad_root_or_split_before_the_model_loads(tmp_path, no_model_load, roots, extra, expected):
    (tmp_path / "data").mkdir()
    (tmp_path / "a-file").write_text("x")
    args = ["eval", "aerith-tiny", "--benchmark", "rsvqa-lr", "--out", str(tmp_path / "run"), "--no-progress", *extra]
    for root in roots:
        args += ["--root", root.format(tmp=tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # nothing written for a command that did not run


@pytest.mark.parametrize(
    "root, expected",
    [("aid={tmp}/nowhere", "nowhere: not found; expected the root folder of the aid dataset"),
     ("synthrs-vg={tmp}/data", "--root given for synthrs-vg, not in suite 'seed'")],
)
def test_eval_suite_refuses_a_bad_root_before_the_model_loads(tmp_path, no_model_load, root, expected):
    """A suite's missing folder was one benchmark FAILED (exit 1) after the model loaded; a --root for a benchmark
    outside the suite a KeyError after the model loaded."""
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(
        app, ["eval", "aerith-tiny", "--suite", "seed", "--root", root.format(tmp=tmp_path), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2, result.output
    assert expected in result.output and "FAILED" not in result.output


@pytest.fixture
def no_server(monkeypatch):
    """Fail the test if `aerith serve` or `aerith ui` gets as far as starting the server (which loads the model)."""
    import aerith.serve.server
    import aerith.ui.commands

    def refuse(*args, **kwargs):
        raise AssertionError("the server was started before the bad input was refused")

    monkeypatch.setattr(aerith.serve.server, "run_server", refuse)
    monkeypatch.setattr(aerith.ui.commands, "run_ui", refuse)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["serve", "aerith-tiny", "--host", ""], "'--host'"),  # uvicorn listened on every interface (0.0.0.0 and ::)
        (["ui", "aerith-tiny", "--host", " "], "'--host'"),
        (["ui", "aerith-tiny", "--password", ""], "'--password'"),  # the page was served without a login
        (["ui", "aerith-tiny", "--max-upload-mb", "-1"], "--max-upload-mb=-1.0 is out of range"),  # named max_body_mb
    ],
)
def test_serve_and_ui_refuse_an_empty_host_or_password_and_name_the_option(args, expected, no_server):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, envvar",
    [(["serve", "aerith-tiny"], "AERITH_API_KEY"), (["ui", "aerith-tiny"], "AERITH_UI_PASSWORD")],
)
def test_a_key_or_password_variable_set_but_empty_is_refused(args, envvar, no_server):
    """click reads an empty variable as unset: `export AERITH_API_KEY=$KEY` with KEY unset served without a key."""
    result = CliRunner().invoke(app, args, env={envvar: ""})
    assert result.exit_code == 2, result.output
    assert f"{envvar} is set but empty" in result.output


def test_serve_refuses_a_model_folder_or_device_it_cannot_load_before_the_server_starts(tmp_path, no_server):
    """A file or a folder without config.json, and a bad --device, failed only once uvicorn had started."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"x")
    for model, expected in ((tmp_path / "empty", "no config.json"), (tmp_path / "weights.bin", "no config.json")):
        result = CliRunner().invoke(app, ["serve", str(model)])
        assert result.exit_code == 2 and expected in result.output, result.output
    result = CliRunner().invoke(app, ["serve", "aerith-tiny", "--device", "gpu0"])
    assert result.exit_code == 2 and "--device: device 'gpu0' is not a device name" in result.output, result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--predictions", "{tmp}/p.jsonl", "--root", "{tmp}/data", "--box-format", "pixels"], "--box-format 'pixels'"),
        (["--predictions", "{tmp}/p.jsonl", "--root", "{tmp}/nowhere"], "nowhere: not found"),
        (["--write-prompts", "{tmp}/new/prompts.jsonl", "--root", "{tmp}/nowhere"], "nowhere: not found"),
    ],
)
def test_eval_without_a_model_leaves_no_folder_behind_on_bad_input(tmp_path, args, expected):
    """A bad --box-format or --root failed only after the run folder (FILE-eval/, the prompts' folder) was made."""
    (tmp_path / "data").mkdir()
    (tmp_path / "p.jsonl").write_text('{"id": "a", "answer": "yes"}\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["eval", "--benchmark", "rsvqa-lr", *(a.format(tmp=tmp_path) for a in args)])
    assert result.exit_code == 2 and expected in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_predict_refuses_an_empty_prompt_before_the_model_loads(tmp_path, no_model_load):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "scene.png")
    result = CliRunner().invoke(app, ["predict", "aerith-tiny", str(tmp_path / "scene.png"), " "])
    assert result.exit_code == 2 and "'prompt'" in result.output, result.output


@pytest.mark.parametrize("stage", ["align", "sft", "scst"])
def test_each_training_command_shows_a_recipe_of_its_own_stage(stage):
    """Every stage's help gave configs/sft-aerith-tiny.yaml as the example, which `aerith align` refuses."""
    import re
    from pathlib import Path

    import yaml

    result = CliRunner().invoke(app, [stage, "--help"], env={"COLUMNS": "200"})
    example = re.search(r"configs/[\w.-]+\.yaml", result.output).group(0)
    recipe = Path(__file__).resolve().parents[1] / example
    assert yaml.safe_load(recipe.read_text())["stage"] == stage


@pytest.mark.parametrize(
    "args, expected",
    [
        (["ablate", "--quick", "--out", "{tmp}/a-file/run"], "--out {tmp}/a-file/run: cannot write"),  # was a traceback
        (["data", "convert", "ucm", "{tmp}", "--out", "{tmp}/a-file/x.json"], "a-file is a file, not a folder"),
        (["data", "show", "ucm", "{tmp}", "--out", "{tmp}/a-file/d/x.png"], "a-file is a file, not a folder"),
    ],
)
def test_an_output_under_a_file_is_refused_in_one_line(tmp_path, args, expected):
    """`data convert/show` said "[Errno 17] File exists: 'a-file'"; `ablate` raised NotADirectoryError."""
    (tmp_path / "a-file").write_text("x")
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert expected.format(tmp=tmp_path) in result.output and "Traceback" not in result.output


def test_data_synth_out_that_cannot_be_made_is_one_line():
    # /proc takes no new folders (even as root): was a FileNotFoundError traceback (exit 1)
    result = CliRunner().invoke(app, ["data", "synth", "--out", "/proc/aerith-nowhere/synthrs", "--n", "3", "--size", "32"])
    assert result.exit_code == 2, result.output
    assert "/proc/aerith-nowhere" in result.output and "Traceback" not in result.output
