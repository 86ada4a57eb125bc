"""Bad recipes, ``--set`` values and run folders fail at once, naming the file and line or the key and type.

Plus a seeded fuzz test over the recipe loader: random bytes, mangled recipe text, mistyped
fields and malformed ``--set`` assignments raise only :class:`RecipeError` (or
``FileNotFoundError``), never anything else.
"""

import copy
import random
import re
import string
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aerith.cli import app
from aerith.train.commands import build_config
from aerith.train.config import RecipeError, dump_config, load_config

REPO = Path(__file__).resolve().parents[2]
SFT_RECIPE = REPO / "configs" / "sft-aerith-tiny.yaml"


def _cli(*args: str):
    result = CliRunner().invoke(app, [*args])
    output = " ".join(result.output.split())
    return result.exit_code, output, result.exception


def test_non_utf8_recipe_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("stage: sft\nout_dir: runs/x\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match=r"latin1\.yaml, line 3: not UTF-8 text \(byte 0xe9 at column 6\)"):
        load_config(path)
    code, out, exc = _cli("sft", str(path))
    assert code == 2 and "latin1.yaml, line 3: not UTF-8" in out and "Traceback" not in out, out


@pytest.mark.parametrize(
    "text, line",
    [
        ("stage: sft\noptim: {lr: 1e-3\nseed: 0\n", 3),  # unclosed flow mapping
        ("stage: sft\n  out_dir: x\n bad indent: 1\n", 2),
        ("stage: sft\nseed: 0\n\tlr: 1\n", 3),  # a tab
        ("stage: !!python/object/apply:os.system ['echo no']\n", 1),  # never executed
    ],
)
def test_malformed_yaml_names_file_and_line(tmp_path, text, line):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=rf"bad\.yaml, line {line}, column \d+: not valid YAML"):
        load_config(path)
    code, out, _ = _cli("sft", str(path))
    assert code == 2 and f"bad.yaml, line {line}" in out and "Traceback" not in out, out


def test_a_wrong_type_in_the_file_names_file_line_and_key(tmp_path):
    path = tmp_path / "typed.yaml"
    path.write_text("stage: sft\nout_dir: runs/x\ndata:\n  train:\n    - {name: synthrs, root: /x}\nschedule:\n  warmup_steps: 0\n  max_steps: many\n")
    with pytest.raises(RecipeError, match=r"typed\.yaml, line 8: schedule\.max_steps: expected an integer, got 'many' \(str\)"):
        load_config(path)
    code, out, _ = _cli("sft", str(path))
    assert code == 2 and "typed.yaml, line 8: schedule.max_steps: expected an integer" in out and "Traceback" not in out, out


def test_a_recipe_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- stage: sft\n")
    with pytest.raises(RecipeError, match="a recipe is a YAML mapping"):
        load_config(path)
    with pytest.raises(RecipeError, match="is not a file"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("schedule.max_steps=abc", "schedule.max_steps: expected an integer, got 'abc' (str) (from --set schedule.max_steps=abc)"),
        ("schedule.max_steps=2.5", "schedule.max_steps: expected an integer, got 2.5 (float)"),
        ("optim.lr=fast", "optim.lr: expected a number, got 'fast' (str)"),
        ("optim.lr=.nan", "optim.lr: expected a number, got nan (float)"),
        ("optim.betas=[0.9]", "optim.betas: expected a list of 2 numbers, got [0.9] (list)"),
        ('logging.tensorboard="false"', "logging.tensorboard: expected true or false, got 'false' (str)"),
        ("model.lora.r=eight", "model.lora.r: expected an integer, got 'eight' (str) (from --set model.lora.r=eight)"),
        ("model.lora=4", "model.lora: expected a mapping of key: value or null, got 4 (int)"),
        # LoRA's own range checks, named as the recipe's key and the override (they named neither)
        ("model.lora.r=0", "model.lora: LoRA needs r >= 1 and alpha > 0, got r=0, alpha=16 (from --set model.lora.r=0)"),
        ("model.lora.dropout=1", "model.lora: LoRA dropout must be in [0, 1), got 1.0 (from --set model.lora.dropout=1)"),
        ("data.train.0.weight=[1]", "data.train.0.weight: expected a number, got [1] (list)"),
        ("data.train=pooler", "data.train: expected a list of sections"),
        ("trainable=pooler", "trainable: expected a list of strings, got 'pooler' (str)"),
        ("optim.grad_clip=off", "optim.grad_clip: expected a number or null, got False (bool)"),
        ("scst.rewards.cider=high", "scst.rewards.cider: expected a number, got 'high' (str)"),
        ("scst.rewards.bleu=1", "scst.rewards: unknown reward term(s) ['bleu']; valid terms: cider, sg_f1, hallucination, missing"),
        ("optim.lr=[1,", "--set optim.lr=[1,: the value is not valid YAML"),
        ("optim..lr=1", "'optim..lr' is not a key path"),
        ("optim", "--set optim: not of the form key.path=value"),
    ],
)
def test_set_values_of_the_wrong_type_name_key_and_type(override, message):
    with pytest.raises(RecipeError) as err:
        build_config("sft", SFT_RECIPE, [override])
    assert message in str(err.value)


def test_a_bad_value_in_a_list_of_sources_names_its_key_and_line(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(
        "stage: sft\nmodel:\n  dtype: fp32\ndata:\n  train:\n    - {name: synthrs, root: /x}\n  val:\n"
        "    - {name: synthrs, root: /x}\n    - name: synthrs\n      root: /x\n      weight: 0\n"
    )
    with pytest.raises(RecipeError, match=r"sources\.yaml, line 11: data\.val\.1\.weight: must be > 0, got 0\.0 \(data source synthrs\)"):
        load_config(path, ["model.dtype=float32"])
    with pytest.raises(RecipeError, match=r"sources\.yaml, line 3: model\.dtype: must be auto, float32, bfloat16 or float16, got 'fp32'"):
        load_config(path, ["data.val.1.weight=1"])
    with pytest.raises(RecipeError, match=r"data\.train\.0\.root: is empty.*\(from --set data\.train\.0\.root=''\)"):
        load_config(path, ["model.dtype=float32", "data.val.1.weight=1", "data.train.0.root=''"])


@pytest.mark.parametrize(
    "options, message",
    [
        # the options' values replace the recipe's lines: the error names the option, not the line it replaced
        ({"init": ""}, r"model\.init: is empty: name a preset or a saved folder \(from --init ''\)$"),
        ({"out_dir": ""}, r"out_dir is empty: name the run folder \(from --out-dir ''\)$"),
        ({"max_steps": -1}, r"schedule: need max_steps >= 1.*got -1, .* \(from --max-steps -1\)$"),
    ],
)
def test_a_bad_value_of_a_typed_option_names_the_option(options, message):
    with pytest.raises(RecipeError) as err:
        build_config("sft", SFT_RECIPE, **options)
    assert re.search(message, str(err.value)) and ", line " not in str(err.value), str(err.value)


def test_a_section_check_names_the_overrides_that_set_its_values():
    with pytest.raises(RecipeError, match=r"optim: need lr > 0.* \(from --set optim\.lr=-1\)$"):
        build_config("sft", SFT_RECIPE, ["optim.lr=-1"])
    with pytest.raises(RecipeError, match=r"checkpoint: need every >= 0 and keep_last >= 1.* \(from --set checkpoint\.keep_last=0\)$"):
        build_config("sft", SFT_RECIPE, ["checkpoint.keep_last=0"])
    with pytest.raises(RecipeError, match=r"\(from --set optim\.lr=-1, --set optim\.eps=1\)$"):
        build_config("sft", SFT_RECIPE, ["optim.lr=-1", "optim.eps=1"])


def test_settings_the_stage_would_not_read_are_refused():
    with pytest.raises(ValueError, match="scst: settings of the scst stage, which `aerith sft` does not read"):
        build_config("sft", SFT_RECIPE, ["scst.kl=0.5"])
    align = REPO / "configs" / "align-aerith-tiny.yaml"
    with pytest.raises(ValueError, match="model.lora: the align stage adds no LoRA adapters"):
        build_config("align", align, ["model.lora.r=8"])
    build_config("scst", REPO / "configs" / "scst-aerith-tiny.yaml", ["scst.kl=0.5"])  # its own section


def test_wrong_set_type_fails_before_anything_is_built(tmp_path):
    """The recipe's data folder and model do not exist: the type error must come first, with exit code 2."""
    code, out, _ = _cli("sft", str(SFT_RECIPE), "--set", "data.batch_size=many", "--init", str(tmp_path / "no-model"),
                        "--out-dir", str(tmp_path / "run"))  # fmt: skip
    assert code == 2 and "data.batch_size: expected an integer, got 'many' (str)" in out and "Traceback" not in out, out
    assert not (tmp_path / "run").exists()


def test_typed_values_are_still_read_as_before():
    config = load_config(SFT_RECIPE, ["optim.lr=1e-4", "schedule.max_steps=1e3", "optim.betas=[0.8, 0.9]", "data.val=null"])
    assert config.optim.lr == pytest.approx(1e-4) and config.schedule.max_steps == 1000
    assert config.optim.betas == (0.8, 0.9) and config.data.val == []
    assert yaml.safe_load(dump_config(config))["optim"]["betas"] == [0.8, 0.9]


@pytest.mark.parametrize("where", ["file", "sys"])
def test_unwritable_out_dir_is_refused_before_data_and_model_load(tmp_path, where):
    """The data root and model do not exist either: the out_dir check must come first."""
    if where == "file":
        out_dir = tmp_path / "a-file"
        out_dir.write_text("not a folder")
        expected = "exists and is not a folder"
    else:
        out_dir = Path("/sys/aerith-test-run")  # not creatable, even by root
        expected = "cannot be written to"
    code, out, _ = _cli("sft", str(SFT_RECIPE), "--out-dir", str(out_dir), "--init", str(tmp_path / "no-model"))
    assert code == 2 and f"out_dir {out_dir}" in out and expected in out and "Traceback" not in out, out


@pytest.mark.parametrize("held", ["config.yaml", "notes.txt"])
def test_a_new_run_never_writes_into_a_folder_of_other_files(tmp_path, held):
    """A dataset or project folder given as out_dir had its config.yaml overwritten by the run's recipe."""
    out_dir = tmp_path / "project"
    out_dir.mkdir()
    (out_dir / held).write_text("the user's own file\n")
    code, out, _ = _cli("sft", str(SFT_RECIPE), "--out-dir", str(out_dir), "--init", str(tmp_path / "no-model"))
    assert code == 2 and f"out_dir {out_dir} holds files that are not a training run's ({held})" in out, out
    assert [p.name for p in out_dir.iterdir()] == [held] and (out_dir / held).read_text() == "the user's own file\n"


def test_a_run_that_stopped_before_its_first_checkpoint_may_be_started_again(tmp_path):
    from aerith.train.run_folder import check_no_foreign_files

    run = tmp_path / "run"
    (run / "tensorboard").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    (run / ".write-test-x").write_text("")
    (run / "config.yaml").write_text(dump_config(load_config(SFT_RECIPE)))
    check_no_foreign_files(run)  # nothing but what a run writes: accepted


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.train.0.options.foo=1", "data.train.0.options: synthrs has no loader option 'foo'; its options: task, "),
        ("data.val.1.options.foo=1", "data.val.1.options: synthrs has no loader option 'foo'"),
        ("data.val.0.name=nope", "data.val.0.name: unknown dataset 'nope'; known datasets: "),
    ],
)
def test_an_unknown_dataset_or_loader_option_is_one_line_before_anything_is_written(tmp_path, override, message):
    """An unknown option reached the loader as a TypeError (a traceback); an unknown name was printed in quotes."""
    code, out, _ = _cli("sft", str(SFT_RECIPE), "--set", override, "--init", str(tmp_path / "no-model"),
                        "--out-dir", str(tmp_path / "run"))  # fmt: skip
    assert code == 2 and out.startswith(f"error: {message}"), out
    assert not (tmp_path / "run").exists()



def test_an_empty_validation_split_is_refused_naming_its_key_before_the_model_loads(tmp_path):
    """It was refused only once the model had loaded (minutes for a 7B one), naming no recipe key."""
    from aerith.data.synthrs import generate

    root = tmp_path / "three"
    generate(root, n=3, size=32, seed=0)  # every scene in train: val is empty
    source = "{name: synthrs, root: %s, split: %s, options: {task: cap}}"
    code, out, _ = _cli(
        "sft", str(SFT_RECIPE), "--set", f"data.train=[{source % (root, 'train')}]",
        "--set", f"data.val=[{source % (root, 'train')}, {source % (root, 'val')}]",
        "--init", str(tmp_path / "no-model"), "--out-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 2 and out.startswith(f"error: data.val.1: data source synthrs ({root}, split val) has no samples"), out

# -- fuzz ---------------------------------------------------------------------------------------------
_VALUES = [
    None, True, False, 0, -1, 1, 2**70, -(2**70), 0.5, -0.5, 1e308, float("inf"), float("-inf"), float("nan"),
    "", " ", "x", "1e-4", "1e999", "nan", "true", "null", "~", "\x00", "é", "\u202e", "[", "{",
    [], [1], [None], ["pooler"], [[[]]], {}, {"a": 1}, {"name": "x"}, {"": None}, {"k": {"k": {"k": [1]}}},
]  # fmt: skip
_RAW = [
    "", "1", "-1", "1e-4", "1.0e400", ".nan", "[1,", "{a: b", "}", "!!python/object/apply:os.system ['true']",
    "&a [*a, *a]", "*undefined", "? [a]\n: b", "'unterminated", "\"\\x\"", "[[[[[[[[[[]]]]]]]]]]", "{1: 2}",
    "!!binary AAAA", "2001-01-01", "0x1F", "0o17", "yes", "No", "\t", "a: b: c", "- - -",
]  # fmt: skip
_BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
) + "stage: sft\ndata: {train: [{name: synthrs, root: /x, options: {bomb: *i}}]}\n"


def _leaf_paths(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaf_paths(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _leaf_paths(v, f"{prefix}.{i}")
    if prefix:
        yield prefix


def _sections(tree):
    """Every mapping in the tree, the tree first."""
    if isinstance(tree, dict):
        yield tree
        for v in tree.values():
            yield from _sections(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _sections(v)


def _mangle(text: str, rng: random.Random) -> bytes:
    chars = list(text)
    for _ in range(rng.randint(1, 6)):
        op, at = rng.randrange(3), rng.randrange(len(chars) + 1)
        piece = rng.choice([":", "[", "]", "{", "}", "-", "&a", "*a", "!", "\t", "\n", " ", "'", '"', "#", "|", ">", "%", "@", "`"])
        if op == 0:
            chars.insert(at, piece)
        elif op == 1 and chars:
            del chars[min(at, len(chars) - 1)]
        else:
            chars[at:at + rng.randint(1, 20)] = [rng.choice(string.printable)]
    data = "".join(chars).encode("utf-8")
    if rng.random() < 0.1:
        data += bytes([rng.randrange(128, 256)])
    return data


def test_recipe_loader_fuzz_raises_only_clear_errors(tmp_path):
    rng = random.Random(0)
    base_text = SFT_RECIPE.read_text()
    base = yaml.safe_load(base_text)
    paths = sorted(set(_leaf_paths(base)))
    path = tmp_path / "fuzz.yaml"
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(600):
        kind, overrides = case % 4, []
        if kind == 0:
            path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(200))))
        elif kind == 1:  # one to three fields of the real recipe (or new ones) set to values of any type
            tree = copy.deepcopy(base)
            for _ in range(rng.randint(1, 3)):
                section = rng.choice(list(_sections(tree)))
                section[rng.choice([*section, "nope"])] = rng.choice(_VALUES)
            path.write_text(yaml.safe_dump(tree))
        elif kind == 2:
            path.write_bytes(_mangle(base_text, rng))
        else:
            path.write_text(base_text if case % 8 != 3 else _BILLION_LAUGHS)
            for _ in range(rng.randint(1, 3)):
                key = rng.choice([*paths, "", ".", "a..b", "optim.lr.x", "data.train.-1", "data.train.99.name", "trainable.0"])
                overrides.append(f"{key}={rng.choice(_RAW)}" if rng.random() < 0.9 else key)
        try:
            config = load_config(path, overrides)
            assert dump_config(config)
            outcomes["loaded"] += 1
        except (RecipeError, FileNotFoundError):
            outcomes["refused"] += 1
        except Exception as err:  # noqa: BLE001 - anything else is the bug this test looks for
            pytest.fail(f"case {case}: {type(err).__name__}: {err}\noverrides={overrides}\nfile={path.read_bytes()[:300]!r}")
    assert outcomes["loaded"] > 20 and outcomes["refused"] > 300, outcomes  # both paths were exercised


def test_the_factual_parser_missing_is_a_recipe_error_before_anything_loads(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "factual_scene_graph" else real(name, *a))
    out = tmp_path / "run"
    code, text, _ = _cli("scst", str(REPO / "configs" / "scst-aerith-tiny.yaml"), "--init", "aerith-tiny",
                         "--out-dir", str(out), "--set", "scst.parser=factual")
    assert code == 2 and "scst.parser: 'factual' needs the optional FACTUAL parser" in text, text
    assert "pip install factualscenegraph" in text and "Traceback" not in text and not out.exists()
