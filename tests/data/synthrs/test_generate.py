"""SynthRS output: byte determinism, the real loaders, load_dataset per task, boxes on pixels, the CLI."""

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aerith.cli import app
from aerith.data import load_dataset
from aerith.data.datasets.dior_rsvg import DIORRSVG
from aerith.data.datasets.karpathy import RSICD
from aerith.data.datasets.rsvqa import RSVQALR
from aerith.data.datasets.synthrs import SynthRS, SynthRSScenes
from aerith.imageio import load_rgb
from aerith.data.synthrs import CATEGORIES, CLASS_NAMES, COLOURS, generate, make_scene
from aerith.data.synthrs.layout import _transform

SPLITS = ("train", "val", "test")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- determinism -------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path):
    a = generate(tmp_path / "a", 24, 48, seed=5)
    b = generate(tmp_path / "b", 24, 48, seed=5, workers=2)  # worker processes change nothing
    c = generate(tmp_path / "c", 24, 48, seed=6)
    files_a, files_b, files_c = tree_bytes(a.out_dir), tree_bytes(b.out_dir), tree_bytes(c.out_dir)
    assert files_a == files_b
    assert len(files_a) > 24 * 4
    assert files_a["scene_graphs.json"] != files_c["scene_graphs.json"]
    shared_images = [k for k in files_a if k.endswith(".png") and k in files_c]
    assert any(files_a[k] != files_c[k] for k in shared_images) or not shared_images
    assert a.splits == {"train": 20, "val": 2, "test": 2}


def test_a_scene_does_not_depend_on_the_set_size(tmp_path):
    small = json.loads((generate(tmp_path / "s", 10, 48, seed=3).out_dir / "scene_graphs.json").read_text())["scenes"]
    large = json.loads((generate(tmp_path / "l", 20, 48, seed=3).out_dir / "scene_graphs.json").read_text())["scenes"]
    for s in small:
        twin = large[s["id"]]
        if twin["class"] == s["class"]:
            assert {k: v for k, v in twin.items() if k != "split"} == {k: v for k, v in s.items() if k != "split"}


def test_bad_arguments_and_foreign_folders_are_refused(tmp_path):
    for kwargs in ({"n": 0}, {"n": 2, "size": 16}, {"n": 2, "seed": -1}, {"n": 2, "workers": 0}):
        with pytest.raises(ValueError):
            generate(tmp_path / "x", **kwargs)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a SynthRS folder"):
        generate(other, 2, 48, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


# -- the real loaders ----------------------------------------------------------------


def test_real_loaders_read_every_format(synth_root, scenes):
    for split in SPLITS:
        mine = [s for s in scenes if s["split"] == split]
        cls = SynthRSScenes(synth_root, split)  # the UCM loader with SynthRS's class list
        assert "uc_merced-" in cls.split_source and len(cls) == len(mine)
        assert Counter(s.targets[0] for s in cls) == Counter(s["class"] for s in mine)
        vqa = load_dataset("rsvqa-lr", synth_root, split)
        assert isinstance(vqa, RSVQALR) and len(vqa) == sum(len(s["questions"]) for s in mine)
        cap = load_dataset("rsicd", synth_root, split)
        assert isinstance(cap, RSICD) and len(cap) == len(mine)
        assert all(len(s.targets) == 5 and s.meta["n_unique_captions"] == 5 for s in cap)
        vg = load_dataset("dior-rsvg", synth_root, split)
        assert isinstance(vg, DIORRSVG) and len(vg) == sum(len(s["expressions"]) for s in mine)
    by_text = {(s["id"], e["text"]): e["box"] for s in scenes for e in s["expressions"]}
    for sample in load_dataset("dior-rsvg", synth_root, "train"):
        assert list(sample.box) == by_text[(int(sample.meta["image_id"]), sample.prompt)]


def test_rsvqa_files_list_every_id_with_stubs(synth_root, scenes):
    n_questions = sum(len(s["questions"]) for s in scenes)
    for split in SPLITS:
        images = json.loads((synth_root / "RSVQA_LR" / f"LR_split_{split}_images.json").read_text())["images"]
        questions = json.loads((synth_root / "RSVQA_LR" / f"LR_split_{split}_questions.json").read_text())["questions"]
        assert [r["id"] for r in images] == list(range(len(scenes)))
        assert [r["id"] for r in questions] == list(range(n_questions))
        stubs = [r for r in images if not r["active"]]
        assert all(r == {"id": r["id"], "active": False} for r in stubs)
        assert len(images) - len(stubs) == sum(s["split"] == split for s in scenes)


def test_dior_split_lines_are_object_indices(synth_root, scenes):
    objects = []
    for xml in sorted((synth_root / "DIOR_RSVG" / "Annotations").glob("*.xml")):
        objects += [(xml.stem, o.findtext("description")) for o in ET.parse(xml).getroot().findall("object")]
    split_of = {s["id"]: s["split"] for s in scenes}
    for split in SPLITS:
        lines = [int(x) for x in (synth_root / "DIOR_RSVG" / f"{split}.txt").read_text().split()]
        assert lines and all(split_of[int(objects[i][0])] == split for i in lines)


@pytest.mark.parametrize("task", ["cls", "vqa", "cap", "vg"])
def test_load_dataset_serves_each_task(synth_root, scenes, task):
    sizes = {}
    for split in SPLITS:
        ds = load_dataset("synthrs", synth_root, split, task=task)
        assert isinstance(ds, SynthRS) and ds.classes == CLASS_NAMES and len(ds) > 0
        assert all(s.task == task and s.image.is_file() for s in ds)
        sizes[split] = len(ds)
        for s in ds:
            scene = ds.scene_record(s.meta["scene_id"])
            assert scene["split"] == split and s.meta["scene_class"] == scene["class"]
            if task == "cls":
                assert s.targets == (scene["class"],)
            elif task == "vqa":
                assert s.kind in ("presence", "comp", "count", "rural_urban") and s.prompt.endswith("?")
                assert (s.prompt, s.targets[0]) in {(q["question"], q["answer"]) for q in scene["questions"]}
            elif task == "cap":
                assert list(s.targets) == scene["captions"] and s.meta["scene_graph_id"] == scene["id"]
                assert Path(s.meta["scene_graphs"]).name == "scene_graphs.json"
            else:
                obj = scene["objects"][s.meta["object_id"]]
                assert list(s.box) == obj["box"] and s.meta["category"] == obj["category"]
    everything = load_dataset("synthrs", synth_root, "train")
    assert Counter(s.task for s in everything)[task] == sizes["train"]
    assert len(ds.scene_graph(0).objects) == len(scenes[0]["objects"])


def test_missing_ground_truth_and_bad_task_are_reported(synth_root, tmp_path):
    from aerith.data import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="scene_graphs.json"):
        load_dataset("synthrs", tmp_path, "train")
    with pytest.raises(ValueError, match="unknown task"):
        load_dataset("synthrs", synth_root, "train", task="seg")


def test_records_skipped_in_a_format_count_as_the_sets_own(tmp_path):
    import warnings

    from aerith.data import SkippedRecordsWarning
    from aerith.data.commands import stats

    root = generate(tmp_path / "s", 12, 48, seed=4).out_dir
    path = root / "RSVQA_LR" / "LR_split_train_questions.json"
    data = json.loads(path.read_text())
    del next(q for q in data["questions"] if q.get("active"))["question"]
    path.write_text(json.dumps(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset("synthrs", root, "train", on_bad="skip")
    assert ds.skipped == 1  # was 0: the RSVQA part's skip was not counted
    skips = [str(w.message) for w in caught if issubclass(w.category, SkippedRecordsWarning)]
    assert len(skips) == 1 and skips[0].startswith("synthrs (train): skipped 1 bad record") and "field 'question'" in skips[0]
    assert stats("synthrs", root, options={"task": "vqa"})["splits"]["train"]["skipped"] == 1
    assert len(load_dataset("synthrs", root, "train", task="vqa", on_bad="skip")) == 10 * 6 - 1


def test_a_set_of_fewer_scenes_than_classes_loads_for_every_task(tmp_path):
    # n=3 draws three of the ten classes: the other class folders do not exist (the UCM loader required them all)
    root = generate(tmp_path / "s", 3, 32, seed=0).out_dir
    scenes = json.loads((root / "scene_graphs.json").read_text())["scenes"]
    cls = load_dataset("synthrs", root, "train", task="cls")
    assert cls.classes == CLASS_NAMES  # labels keep the full class order
    assert sorted(s.targets[0] for s in cls) == sorted(s["class"] for s in scenes)
    assert all(s.meta["label"] == CLASS_NAMES.index(s.targets[0]) for s in cls)
    assert len(load_dataset("synthrs", root, "train")) == len(cls) + sum(
        len(s["questions"]) + 1 + len(s["expressions"]) for s in scenes
    )
    assert len(load_dataset("synthrs", root, "test", task="cls")) == 0


def test_a_lost_class_folder_is_still_reported(tmp_path):
    import shutil

    from aerith.data import RecordError

    root = generate(tmp_path / "s", 12, 32, seed=0).out_dir
    scene = next(s for s in json.loads((root / "scene_graphs.json").read_text())["scenes"] if s["split"] == "train")
    shutil.rmtree((root / scene["files"]["ucm"]).parent)
    with pytest.raises(RecordError, match="listed image not found"):
        load_dataset("synthrs", root, "train", task="cls")


# -- boxes and pixels ----------------------------------------------------------------


def test_boxes_lie_on_their_objects(synth_root, scenes):
    for scene in scenes[:60]:
        image = np.asarray(load_rgb(synth_root / scene["files"]["rsicd"]))  # lossless PNG
        size = scene["size"]
        assert image.shape == (size, size, 3)
        boxes = [o["box"] for o in scene["objects"]]
        for obj in scene["objects"]:
            x1, y1, x2, y2 = obj["box"]
            assert 0 <= x1 < x2 <= size and 0 <= y1 < y2 <= size and min(x2 - x1, y2 - y1) >= 2
            crop = image[y1:y2, x1:x2].reshape(-1, 3)
            share = (crop == np.asarray(COLOURS[obj["colour"]], np.uint8)).all(axis=1).mean()
            assert share >= 0.12, (scene["id"], obj)  # airplanes fill little of their box
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], "objects overlap"


@pytest.mark.parametrize("turns", range(4))
@pytest.mark.parametrize("mirror", [False, True])
def test_boxes_follow_the_rotation_of_the_image(turns, mirror):
    size, box = 20, (3, 5, 9, 16)
    mask = np.zeros((size, size), bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    mask = np.rot90(mask, turns)
    mask = mask[:, ::-1] if mirror else mask
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert _transform(box, size, turns, mirror) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)


def test_objects_are_big_and_countable_at_the_default_size():
    shortest, per_category = [], []
    for i, name in enumerate(CLASS_NAMES * 2):
        _, graph = make_scene(i, name, 128, np.random.default_rng([0, i]))
        shortest += [min(o.box[2] - o.box[0], o.box[3] - o.box[1]) for o in graph.objects]
        per_category += list(Counter(o.category for o in graph.objects).values())
    assert min(shortest) >= 5 and np.median(shortest) >= 10
    assert max(per_category) <= 8


def test_classes_are_visible_from_colour_and_texture(synth_root, scenes):
    """A nearest-centroid classifier on colour histograms beats chance by far: the class is in the pixels."""

    def features(scene):
        img = np.asarray(load_rgb(synth_root / scene["files"]["rsicd"])).astype(np.int64) // 64
        codes = img[..., 0] * 16 + img[..., 1] * 4 + img[..., 2]
        return np.bincount(codes.ravel(), minlength=64) / codes.size

    train = [s for s in scenes if s["split"] == "train"]
    held = [s for s in scenes if s["split"] != "train"]
    centroids = {c: np.mean([features(s) for s in train if s["class"] == c], axis=0) for c in CLASS_NAMES}
    hits = [min(centroids, key=lambda c: np.abs(centroids[c] - features(s)).sum()) == s["class"] for s in held]
    assert np.mean(hits) >= 0.6  # chance is 0.1


def test_object_colours_are_distinct():
    rgb = np.asarray(list(COLOURS.values()), float)
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1) + np.eye(len(rgb)) * 1e9
    assert gaps.min() > 60
    assert all(set(c.colours) <= set(COLOURS) for c in CATEGORIES.values())


# -- the command line ----------------------------------------------------------------


def test_cli_writes_a_set_and_refuses_to_clobber(tmp_path):
    runner = CliRunner()
    out = tmp_path / "synth"
    args = ["data", "synth", "--out", str(out), "--n", "12", "--size", "48", "--seed", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 12 scenes" in result.output and (out / "README.md").is_file()
    card = (out / "README.md").read_text()
    assert "| seed | 2 |" in card and "| presence |" in card and "| storage tank |" in card
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert len(load_dataset("synthrs", out, "train", task="vqa")) == 10 * 6


@pytest.mark.parametrize("content", [b"", b"my notes"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_cli_out_that_is_a_file_is_named_a_file(tmp_path, content, overwrite):
    target = tmp_path / "notes.txt"
    target.write_bytes(content)
    args = ["data", "synth", "--out", str(target), "--n", "2", "--size", "48"] + (["--overwrite"] if overwrite else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "is a file, not a folder" in result.output
    assert "not empty" not in result.output and "Traceback" not in result.output
    assert target.read_bytes() == content


def test_cli_out_under_a_file_names_that_file(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    result = CliRunner().invoke(app, ["data", "synth", "--out", str(target / "synthrs"), "--n", "2", "--size", "48"])
    assert result.exit_code == 2, result.output
    assert f"{target} is a file, not a folder" in result.output  # was "[Errno 17] File exists: ..."
    assert target.read_text() == "keep me"
