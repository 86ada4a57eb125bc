"""Bad input on the command line: exit 2, one line naming the option, file or field, before any model loads."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aerith.cli import app


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a command gets as far as loading a model."""
    import aerith.infer.load

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(aerith.infer.load, "load_vlm", refuse)


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
