"""The command line: every command declared once, training commands one per registered stage."""

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
