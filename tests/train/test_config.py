from pathlib import Path

import pytest

from aerith.train.commands import build_config
from aerith.train.config import dump_config, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("recipe", CONFIGS, ids=lambda p: p.name)
def test_every_recipe_loads(recipe):
    config = load_config(recipe)
    assert config.stage in recipe.name
    assert dump_config(config)


def test_overrides_are_typed_and_dotted(tmp_path):
    config = load_config(
        Path("configs/sft-aerith-tiny.yaml"),
        ["optim.lr=1e-4", "data.train.0.root=/x", "schedule.max_steps=70", "model.lora.r=4", "trainable=[pooler]"],
    )
    assert config.optim.lr == pytest.approx(1e-4) and isinstance(config.optim.lr, float)
    assert config.data.train[0].root == "/x" and config.schedule.max_steps == 70
    assert config.model.lora["r"] == 4 and config.trainable == ["pooler"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown field"),
        ("nope=1", "unknown top-level"),
        ("optim.lr=-1", "lr > 0"),
        ("schedule.warmup_steps=9999", "warmup_steps"),
        ("data.train.5.root=/x", "not an index"),
    ],
)
def test_bad_recipes_say_what_is_wrong(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(Path("configs/sft-aerith-tiny.yaml"), [override])


def test_an_unknown_stage_lists_the_registered_ones():
    with pytest.raises(ValueError, match="stage must be one of align, sft, scst, got 'ppo'"):
        build_config("sft", Path("configs/sft-aerith-tiny.yaml"), ["stage=ppo"])
