"""LLaVA / GeoChat and LHRS-Bot JSON: export, import, round trips, bad records."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from PIL import Image

from aerith.data.errors import RecordError, SkippedRecordsWarning
from aerith.data.instructions import to_instruction
from aerith.data.interop import from_lhrs, from_llava, to_lhrs, to_llava, write_json
from aerith.data.sample import Sample

CLASSES = ("airport", "dense residential", "beach")
SIZE = (200, 100)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    Image.new("RGB", SIZE).save(tmp_path / "images" / "a.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "images" / "b.jpg")
    return tmp_path


def _samples(root: Path) -> list[Sample]:
    a = root / "images" / "a.png"
    return [
        Sample(a, "vg", prompt="the red car at the top.", box=(10.0, 20.0, 111.0, 61.0)),
        Sample(a, "vqa", prompt="Is there a road?", targets=("yes",), kind="presence"),
        Sample(a, "cap", targets=("a road beside a river.", "many cars.")),
        Sample(root / "images" / "b.jpg", "cls", targets=("dense residential",)),
    ]


def _instructions(root: Path, seed: int = 0) -> list:
    return [to_instruction(s, classes=CLASSES, seed=seed, index=i) for i, s in enumerate(_samples(root))]


def _check_round_trip(original: list, back: list[Sample], tolerance: float) -> None:
    assert len(back) == len(original)
    for ins, got in zip(original, back, strict=True):
        src = ins.sample
        assert (got.task, got.image, got.prompt) == (src.task, src.image, src.prompt)
        if src.task == "vg":
            assert got.box == pytest.approx(src.box, abs=tolerance)
        else:
            assert got.targets == (ins.target,) and ins.target in src.targets
        if src.task == "cls":
            assert got.meta["classes"] == list(CLASSES)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_llava_round_trip_through_a_file(root: Path, seed: int) -> None:
    instructions = _instructions(root, seed)
    records = to_llava(instructions, image_base=root)
    assert records[0]["image"] == "images/a.png"
    assert records[0]["conversations"][0]["from"] == "human"
    assert records[0]["conversations"][0]["value"].startswith("<image>\n[VG] ")
    assert records[0]["conversations"][1] == {"from": "gpt", "value": instructions[0].target}
    path = write_json(records, root / "out" / "llava.json")
    assert json.loads(path.read_text()) == records
    # to grid precision: half a 0-1000 grid step of the image side
    _check_round_trip(instructions, from_llava(path, root), tolerance=0.5 * max(SIZE) / 1000)


def test_llava_without_image_base_keeps_paths(root: Path) -> None:
    records = to_llava(_instructions(root))
    assert records[0]["image"] == (root / "images" / "a.png").as_posix()
    assert from_llava(records, "/")[0].image == root / "images" / "a.png"


@pytest.mark.parametrize("box_format", ["norm", "pixel"])
def test_lhrs_round_trip(root: Path, box_format: str) -> None:
    instructions = _instructions(root)
    data = to_lhrs(instructions, image_base=root, box_format=box_format)
    grounding = data["data"][0]
    assert set(grounding) == {"img", "question", "answer"} and grounding["question"].startswith("[VG]")
    expected = "[0.050, 0.200, 0.555, 0.610]" if box_format == "norm" else "[10, 20, 111, 61]"
    assert grounding["answer"] == expected
    assert data["data"][1] == {"name": "images/a.png", "conv": [{"Question": instructions[1].prompt, "Answer": "yes"}]}
    path = write_json(data, root / "lhrs.json")
    back = from_lhrs(path, root)
    _check_round_trip(instructions, back, tolerance=0.6)
    assert back[0].meta["box_format"] == box_format


def test_geochat_conversation_becomes_one_sample_per_turn(root: Path) -> None:
    record = {
        "id": "P0001",
        "image": "images/a.png",
        "conversations": [
            {"from": "human", "value": "<image>\n[refer] give me the location of <p>the plane</p>"},
            {"from": "gpt", "value": "<p>the plane</p> {<10><20><30><40>|<45>}{<50><50><60><60>|<0>}"},
            {"from": "human", "value": "[identify] what is this {<10><20><30><40>|<0>}"},
            {"from": "gpt", "value": "a plane"},
            {"from": "human", "value": "[grounding] describe the image in detail"},
            {"from": "gpt", "value": "There are <p>two planes</p> {<10><20><30><40>|<0>}{<50><50><60><60>|<0>} near a runway."},
            {"from": "human", "value": "[vqa] How many planes are there?"},
            {"from": "gpt", "value": "2"},
            {"from": "human", "value": "Is there a road?\nAnswer the question using a single word or phrase."},
            {"from": "gpt", "value": "Yes"},
            {"from": "human", "value": "Classify the image within one of the given classes: airport, beach. Answer with one word or short phrase."},
            {"from": "gpt", "value": "airport"},
            {"from": "human", "value": "Describe the image in detail"},
            {"from": "gpt", "value": "An airport with two planes."},
            {"from": "user", "value": "Where is the small plane?"},
            {"from": "assistant", "value": "It is at [100, 200, 300, 400]."},
        ],
    }
    samples = from_llava([record], root)
    assert [s.task for s in samples] == ["vg", "vqa", "cap", "vqa", "vqa", "cls", "cap", "vg"]
    assert [s.meta["turn"] for s in samples] == list(range(8))
    assert all(s.meta["id"] == "P0001" for s in samples)
    refer, identify, grounding, count, road, scene, caption, plain_vg = samples
    assert refer.prompt == "the plane" and refer.box == pytest.approx((20, 20, 60, 40))  # 0-100 grid, angle dropped
    assert refer.meta["boxes"][1] == pytest.approx([100, 50, 120, 60])
    assert identify.kind == "identify" and identify.box == pytest.approx((20, 20, 60, 40))
    assert identify.prompt == "what is this [100, 200, 300, 400]" and identify.targets == ("a plane",)
    assert grounding.targets == ("There are two planes near a runway.",)
    assert grounding.meta["phrases"][0]["phrase"] == "two planes" and len(grounding.meta["phrases"][0]["boxes"]) == 2
    assert (count.prompt, count.targets) == ("How many planes are there?", ("2",))
    assert (road.prompt, road.targets) == ("Is there a road?", ("Yes",))
    assert scene.targets == ("airport",) and scene.meta["classes"] == ["airport", "beach"]
    assert caption.targets == ("An airport with two planes.",)
    assert plain_vg.prompt == "Where is the small plane?" and plain_vg.box == pytest.approx((20, 20, 60, 40))


def test_our_tokens_with_foreign_phrasing(root: Path) -> None:
    records = [
        {"id": 1, "image": "images/a.png", "conversations": [
            {"from": "human", "value": "<image>\n[VQA] Is it urban? Answer with a single word or phrase."},
            {"from": "gpt", "value": "no"},
            {"from": "human", "value": "[VG] the tall chimney"},
            {"from": "gpt", "value": "[0, 0, 500, 1000]"},
            {"from": "human", "value": "[CLS] Pick the scene among: airport, beach"},
            {"from": "gpt", "value": "beach"},
        ]},
    ]  # fmt: skip
    vqa, vg, cls = from_llava(records, root)
    assert vqa.prompt == "Is it urban?"
    assert vg.prompt == "the tall chimney" and vg.box == pytest.approx((0, 0, 100, 100))
    assert cls.meta["classes"] == ["airport", "beach"]


def test_lhrs_items_as_lhrs_bot_writes_them(root: Path) -> None:
    data = {
        "data": [
            {"filename": ["images/a.png"], "conv": {"Question": "<image>What is in the image?", "Answer": "A road."}},
            {"name": "images/a.png", "conv": [{"Question": "Is there a car?", "value": "no"}]},
            {"img": "images/b", "question": "the grey roof", "answer": "[0.25, 0.5, 0.75, 1.0]"},
            {"img": "images/b.jpg", "question": "the grey roof", "answer": "[16, 32, 48, 64]"},
        ]
    }
    what, car, norm, pixel = from_lhrs(data, root)
    assert (what.task, what.prompt, what.targets) == ("vqa", "What is in the image?", ("A road.",))
    assert car.targets == ("no",)
    assert norm.image == root / "images" / "b.jpg" and norm.box == pytest.approx((16, 32, 48, 64))
    assert pixel.box == pytest.approx((16, 32, 48, 64)) and pixel.meta["box_format"] == "pixel"
    assert from_lhrs(data["data"][2:3], root, box_format="pixel")[0].box == pytest.approx((0.25, 0.5, 0.75, 1.0))


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"conversations": []}, "image", "missing"),
        ({"image": "images/nope.png", "conversations": []}, "image", "not found"),
        ({"image": "images/a.png"}, "conversations", "non-empty list"),
        ({"image": "images/a.png", "conversations": [{"from": "human", "value": "hi"}]}, "conversations", "pairs"),
        ({"image": "images/a.png", "conversations": [{"from": "gpt", "value": "x"}, {"from": "gpt", "value": "y"}]},
         "conversations[0].from", "human"),
        ({"image": "images/a.png", "conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "y"}]},
         "conversations[0].value", "expected text"),
        ({"image": "images/a.png", "conversations": [{"from": "human", "value": "[VG] the car"}, {"from": "gpt", "value": "top left"}]},
         "conversations[1].value", "without a box"),
        ({"image": "images/a.png", "conversations": [{"from": "human", "value": "Is it?"}, {"from": "gpt", "value": " "}]},
         "conversations[1].value", "empty answer"),
        ({"image": "images/a.png", "conversations": [{"from": "human", "value": "[identify] what is it"}, {"from": "gpt", "value": "a car"}]},
         "conversations[0].value", "without a"),
        ({"image": "images/a.png", "conversations": [{"from": "human", "value": "[refer] <p>the ship</p>"}, {"from": "gpt", "value": "{<120><10><150><50>}"}]},
         "conversations[1].value", r"box \[120.0, 10.0, 150.0, 50.0\] lies outside the 0-100 grid"),
    ],
)  # fmt: skip
def test_bad_llava_records_name_file_record_and_field(root: Path, record: dict, field: str, message: str) -> None:
    good = {"id": "ok", "image": "images/a.png", "conversations": [{"from": "human", "value": "[CAP] Describe this image."}, {"from": "gpt", "value": "A road."}]}
    path = write_json([good, record], root / "bad.json")
    with pytest.raises(RecordError, match=message) as info:
        from_llava(path, root)
    assert (info.value.file, info.value.record, info.value.field) == (path, 1, field)
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 bad record"):
        samples = from_llava(path, root, on_bad="skip")
    assert [s.meta["id"] for s in samples] == ["ok"]


def test_a_small_object_on_an_integer_grid_is_one_step_wide(root: Path) -> None:
    records = [{"image": "images/a.png", "conversations": [
        {"from": "human", "value": "[refer] <p>the car</p>"}, {"from": "gpt", "value": "{<45><67><45><68>}"},
        {"from": "human", "value": "[VG] the car"}, {"from": "gpt", "value": "[1000, 500, 1000, 520]"}]}]  # fmt: skip
    geochat, ours = from_llava(records, root)
    assert geochat.box == pytest.approx((90.0, 67.0, 92.0, 68.0))  # 200 x 100 px: one step of 0-100 is 2 x 1 px
    assert ours.box == pytest.approx((199.8, 50.0, 200.0, 52.0))  # at the right edge: the step lies inside


def test_bad_files_and_lhrs_records(root: Path) -> None:
    (root / "broken.json").write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        from_llava(root / "broken.json", root)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        from_llava(root / "missing.json", root)
    with pytest.raises(RecordError, match="JSON list"):
        from_llava({"data": []}, root)
    with pytest.raises(RecordError, match="'answer'.*no \\[x1, y1, x2, y2\\] box"):
        from_lhrs([{"img": "images/b.jpg", "question": "q", "answer": "somewhere"}], root)
    with pytest.raises(RecordError, match=r"'answer': box \[250.0, 10.0, 300.0, 50.0\] lies outside the 200x100 image"):
        from_lhrs([{"img": "images/a.png", "question": "the ship", "answer": "[250, 10, 300, 50]"}], root)  # pixels
    (box,) = from_lhrs([{"img": "images/a.png", "question": "the ship", "answer": "[150, 10, 201, 50]"}], root)
    assert box.box == (150.0, 10.0, 200.0, 50.0)  # a pixel past the edge is rounding: clamped
    with pytest.raises(RecordError, match=r"'answer': box \[150.0, 10.0, 150.0, 50.0\] has no area"):
        from_lhrs([{"img": "images/a.png", "question": "the ship", "answer": "[150, 10, 150, 50]"}], root)
    with pytest.raises(RecordError, match="record 0, field 'name'"):
        from_lhrs({"data": [{"conv": []}]}, root)
    with pytest.raises(RecordError, match="field 'conv\\[0\\].Answer'"):
        from_lhrs({"data": [{"name": "images/a.png", "conv": [{"Question": "q"}]}]}, root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing warned
        assert from_lhrs({"data": []}, root) == []
    with pytest.raises(ValueError, match="box_format"):
        to_lhrs([], box_format="grid")  # type: ignore[arg-type]


def test_write_json_is_atomic(root: Path) -> None:
    path = write_json({"data": [1]}, root / "x.json")
    with pytest.raises(TypeError):
        write_json({"data": {1, 2}}, path)  # not serialisable: the old file stays whole
    assert json.loads(path.read_text()) == {"data": [1]}
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == ["x.json"]


@pytest.mark.parametrize("fmt", ["llava", "lhrs"])
def test_paths_given_with_tilde_are_expanded(root: Path, fmt: str, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(root))
    elsewhere = root / "x" / "y"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    to_json, read = (to_llava, from_llava) if fmt == "llava" else (to_lhrs, from_lhrs)
    data = to_json(_instructions(root), image_base="~")
    first = data[0] if fmt == "llava" else data["data"][0]
    assert (first.get("image") or first.get("img")) == "images/a.png"
    write_json(data, root / "out.json")
    back = read("~/out.json", "~")
    assert [s.image for s in back] == [s.sample.image for s in _instructions(root)]
