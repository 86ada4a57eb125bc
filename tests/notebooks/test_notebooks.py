"""The five notebooks: kept in git without outputs, and each executed top to bottom on a clean kernel.

Execution goes through nbclient (one fresh ipykernel per notebook), in order, in one temporary
working folder: notebook 02 reads 01's SynthRS, 03 starts from 02's checkpoint, 04 and 05 read
03's. Parameters are injected the way papermill does it, as a cell tagged ``injected-parameters``
after the cell tagged ``parameters``. A failing notebook is written, executed, to the temporary
folder (its path is in the error) so that the failing cell's output can be read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from aerith.train.config import load_config

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ORDER = (
    "01_data_preprocessing",
    "02_train_projection_head",
    "03_finetune_model",
    "04_evaluation",
    "05_inference_examples",
)
CELL_TIMEOUT_S = 600  # a hang guard, not a speed check
# Smaller than the notebooks' defaults (300 scenes, SFT 150 steps, every test sample, SCST 20 steps),
# to keep the suite short; the checks below hold at these sizes as at the defaults.
SCENES = {"SYNTHRS_SCENES": 200}
SMALL = {
    "01_data_preprocessing": SCENES,
    "02_train_projection_head": SCENES,
    "03_finetune_model": {**SCENES, "STEPS": 80},
    "04_evaluation": {**SCENES, "LIMIT": 40},
    # CHECKPOINT as the text suggests ("your run"): 03's run folder, relative to the kernel's folder
    "05_inference_examples": {**SCENES, "SCST_STEPS": 10, "CHECKPOINT": "aerith-notebooks/sft"},
}


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)


def tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def inject(nb: nbformat.NotebookNode, values: dict[str, Any]) -> None:
    """Papermill's convention: assignments in a new cell right after the one tagged ``parameters``."""
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in tags(c))
    source = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))


def kernel_env() -> dict[str, str]:
    """This checkout first on the kernel's path; offline; idle OpenMP threads sleep (a shared CPU)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def execute(nb: nbformat.NotebookNode, cwd: Path, keep_as: Path) -> nbformat.NotebookNode:
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(env=kernel_env())
    except CellExecutionError as err:
        nbformat.write(nb, str(keep_as))
        raise AssertionError(f"{keep_as.name} failed; the executed notebook is {keep_as}\n{err}") from None
    nbformat.write(nb, str(keep_as))
    return nb


def figures(nb: nbformat.NotebookNode) -> list[Any]:
    return [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs
        if o.output_type == "display_data" and "image/png" in o.get("data", {})
    ]


def stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")


class Runner:
    """Executes the notebooks in order in one working folder, each once, on demand."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.work_dir = cwd / "aerith-notebooks"
        self.done: dict[str, nbformat.NotebookNode] = {}

    def run(self, name: str) -> nbformat.NotebookNode:
        for earlier in ORDER[: ORDER.index(name) + 1]:
            if earlier not in self.done:
                nb = read(earlier)
                inject(nb, {"WORK_DIR": str(self.work_dir), **SMALL[earlier]})
                self.done[earlier] = execute(nb, self.cwd, self.cwd / f"{earlier}.executed.ipynb")
        return self.done[name]


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner(tmp_path_factory.mktemp("notebooks"))


# -- stored form ------------------------------------------------------------------------------------


def test_the_five_notebooks_are_there():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == list(ORDER)


@pytest.mark.parametrize("name", ORDER)
def test_stored_without_outputs_with_a_parameters_cell_and_no_shell(name):
    nb = read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (
        f"{name}.ipynb: cells {dirty} hold outputs or execution counts; clear them before committing "
        f"(jupyter nbconvert --clear-output --inplace notebooks/{name}.ipynb)"
    )
    assert "parameters" in tags(code[0]), f"{name}: the first code cell must be tagged 'parameters'"
    assert "WORK_DIR =" in code[0].source
    for c in code:  # the public Python API, not the command line through the shell
        lines = [ln.strip() for ln in c.source.splitlines()]
        assert not any(ln.startswith(("!", "%%bash", "%%sh", "%system")) or "subprocess" in ln for ln in lines), c.source


# -- executed ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ORDER)
def test_runs_top_to_bottom_and_draws(runner, name):
    nb = runner.run(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert figures(nb), f"{name} drew no figure"
    assert str(runner.work_dir) in stdout(nb)  # it worked in the injected folder, not next to the notebook


def test_the_chain_leaves_each_stage_behind(runner):
    runner.run(ORDER[-1])
    work = runner.work_dir
    # 01 wrote LLaVA and LHRS-Bot JSON (README's notebook table: both written and read back)
    assert list((work / "instructions").glob("*.llava.json")) and list((work / "instructions").glob("*.lhrs.json"))
    for stage in ("align", "sft", "scst"):
        assert (work / stage / "checkpoint-final" / "config.json").is_file(), stage
    assert (work / "sft-merged" / "config.json").is_file()
    for bench in ("synthrs-cls", "synthrs-vqa", "synthrs-vg", "synthrs-cap"):
        assert (work / "eval" / bench / "results.md").is_file(), bench
    # 03 held classes out of every training source; 05 tested zero-shot on exactly those
    sft = load_config(work / "sft" / "config.yaml")
    trained = {c for src in sft.data.train for c in src.options["classes"]}
    assert trained.isdisjoint({"airport", "beach", "desert"}) and len(trained) == 7
    assert "zero-shot: SynthRS held-out classes (airport, beach, desert)" in stdout(runner.done[ORDER[-1]])
    # 05 read the run's recipe, beside the checkpoint, and checked that the held-out classes stayed out
    assert "tuned on SynthRS classes: farmland, forest, dense residential, industrial, harbor, river, parking lot" in stdout(
        runner.done[ORDER[-1]]
    )


@pytest.mark.parametrize("random_weights", [False, True])
def test_results_table_marks_random_weights_and_baselines_the_samples_asked(runner, monkeypatch, random_weights):
    """04's table cell, run here on 04's results.json files: a random model is marked, and under LIMIT the
    baselines are scored on the first LIMIT test samples, the ones the model was scored on."""
    from types import SimpleNamespace

    from aerith.data import load_dataset
    from aerith.eval.report import RANDOM_WEIGHTS_LINE
    from aerith.quickstart.baselines import vqa_baseline

    runner.run("04_evaluation")
    work, limit = runner.work_dir, SMALL["04_evaluation"]["LIMIT"]
    results = {}
    for bench in ("synthrs-cls", "synthrs-vqa", "synthrs-vg", "synthrs-cap"):
        results[bench] = {**json.loads((work / "eval" / bench / "results.json").read_text()), "random_weights": random_weights}
    cell = next(c for c in read("04_evaluation").cells if "results-table" in tags(c))
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    exec(cell.source, {"results": results, "synth_root": work / "synthrs", "LIMIT": limit, "load_dataset": load_dataset,
                       "vlm": SimpleNamespace(name="m")})
    table = shown[0].data
    assert (RANDOM_WEIGHTS_LINE in table) is random_weights
    asked = list(load_dataset("synthrs", work / "synthrs", "test", task="vqa"))[:limit]
    assert results["synthrs-vqa"]["counts"]["samples"] == len(asked) == limit
    base = vqa_baseline(load_dataset("synthrs", work / "synthrs", "train", task="vqa"), asked)["overall"]
    assert f"| {100 * base:.1f} majority answer per type |" in table


def test_merge_check_allows_bf16_rounding(runner, tmp_path):
    """03's merge check on a bf16 checkpoint (the 7B recipe's dtype), run here on 03's model saved in bf16:
    the merged weights are rounded to bf16, which the float32 tolerance called 'something else'."""
    from types import SimpleNamespace

    import torch

    import aerith
    from aerith.data import load_dataset
    from aerith.train.merge import merge_lora_checkpoint

    runner.run("03_finetune_model")
    work = runner.work_dir
    aerith.load_vlm(work / "sft" / "checkpoint-final", dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    merge_lora_checkpoint(tmp_path / "bf16", tmp_path / "bf16-merged")
    seen = [c for c in aerith.data.get_dataset_class("synthrs").classes if c not in ("airport", "beach", "desert")]
    cell = next(c for c in read("03_finetune_model").cells if "merge-check" in tags(c))
    exec(cell.source, {"tuned": aerith.load_vlm(tmp_path / "bf16"), "merged": aerith.load_vlm(tmp_path / "bf16-merged"),
                       "result": SimpleNamespace(final_dir=tmp_path / "bf16"), "load_dataset": load_dataset,
                       "synth_root": work / "synthrs", "SEEN": seen})


# -- the GPU switch, checked without a GPU ------------------------------------------------------------


def recipe_under(name: str, values: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Run a notebook up to its cell tagged ``recipe`` with ``values`` injected; return ``config`` as a dict."""
    nb = read(name)
    end = next(i for i, c in enumerate(nb.cells) if "recipe" in tags(c))
    nb.cells = nb.cells[: end + 1]
    inject(nb, values)
    nb.cells.append(nbformat.v4.new_code_cell('print("CONFIG=" + json.dumps(config.to_dict()))'))
    out = execute(nb, cwd, cwd / f"{name}.recipe.executed.ipynb")
    line = next(ln for ln in stdout(out).splitlines() if ln.startswith("CONFIG="))
    return json.loads(line[len("CONFIG="):])


def same_fields(config: dict[str, Any], recipe: Path, fields: dict[str, list[str]]) -> None:
    expected = load_config(recipe).to_dict()
    for section, keys in fields.items():
        for key in keys:
            got = config[section][key] if section else config[key]
            want = expected[section][key] if section else expected[key]
            assert got == want, f"{section}.{key}: notebook {got!r}, {recipe.name} {want!r}"


def test_aerith_7b_settings_follow_the_7b_recipes(tmp_path):
    """MODEL = "aerith-7b" and real roots build the recipes of configs/*-aerith-7b.yaml (no weights are loaded)."""
    work = {"WORK_DIR": str(tmp_path / "work"), "MODEL": "aerith-7b", "SYNTHRS_SCENES": 20}
    align = recipe_under("02_train_projection_head", {**work, "IMAGE_ROOT": "/data/NWPU-RESISC45"}, tmp_path)
    same_fields(align, REPO / "configs" / "align-aerith-7b.yaml", {
        "": ["stage", "trainable"], "model": ["init", "dtype"], "optim": ["lr", "grad_clip"],
        "schedule": ["max_steps", "warmup_steps", "schedule", "min_lr_ratio"], "data": ["batch_size", "num_workers", "max_val_samples"],
    })
    assert [(s["name"], s["root"]) for s in align["data"]["train"]] == [("nwpu-resisc45", "/data/NWPU-RESISC45")]

    roots = {"CLS_ROOT": "/d/NWPU-RESISC45", "VQA_ROOT": "/d/RSVQA-LR", "CAP_ROOT": "/d/RSICD", "VG_ROOT": "/d/DIOR-RSVG"}
    sft = recipe_under("03_finetune_model", {**work, **roots}, tmp_path)
    same_fields(sft, REPO / "configs" / "sft-aerith-7b.yaml", {
        "": ["stage", "trainable", "mixed_precision"], "model": ["init", "dtype", "lora", "gradient_checkpointing"],
        "optim": ["lr", "grad_accum", "weight_decay", "grad_clip"],
        "schedule": ["max_steps", "warmup_steps", "schedule", "min_lr_ratio"],
        "data": ["batch_size", "num_workers", "max_length", "max_val_samples"],
    })
    expected = {s.name: s.weight for s in load_config(REPO / "configs" / "sft-aerith-7b.yaml").data.train}
    assert {s["name"]: s["weight"] for s in sft["data"]["train"]} == expected
    assert {s["root"] for s in sft["data"]["train"]} == set(roots.values())
