"""The page's logic without a browser: scenes, bands, georeference, turns and prompts, regions,
drawing, downloads, and asking through the served model's queue."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from aerith.imageio import array_to_rgb
from aerith.prompts import caption_prompt, classify_prompt, ground_prompt, vqa_prompt
from aerith.ui.conversation import (
    DEFAULT_CLASSES,
    Turn,
    TurnError,
    chat_messages,
    make_turn,
    parse_classes,
)
from aerith.ui.draw import REGION_COLOUR, turn_colour
from aerith.ui.examples import (
    ASSETS,
    EXAMPLES,
    S2_BANDS,
    S2_CRS,
    S2_ORIGIN,
    S2_PIXEL,
    example_rows,
)
from aerith.ui.export import answers_document, write_answers, write_boxes_geojson
from aerith.ui.scene import SceneError, load_scene
from aerith.ui.session import RegionError, Session
from tests.ui.conftest import png_bytes

S2 = ASSETS / "ui-parking-s2.tif"


# -- scenes --------------------------------------------------------------------------------------------
def test_every_example_scene_is_shipped_and_loads():
    assert [e.path for e in example_rows()] == [e.path for e in EXAMPLES]
    for example in EXAMPLES:
        scene = load_scene(example.path)
        assert scene.size == (128, 128) and scene.rgb.mode == "RGB"


def test_a_13_band_geotiff_shows_sentinel2_rgb_and_is_georeferenced():
    pytest.importorskip("rasterio")
    scene = load_scene(S2)
    assert scene.band_count == 13 and scene.array.dtype == np.uint16
    assert scene.bands == (3, 2, 1) and scene.band_names == S2_BANDS
    assert np.array_equal(np.asarray(scene.rgb), np.asarray(array_to_rgb(scene.array, (3, 2, 1))))
    assert scene.georef is not None and scene.georef.crs_name == S2_CRS
    assert scene.georef.transform == (S2_PIXEL, 0.0, S2_ORIGIN[0], 0.0, -S2_PIXEL, S2_ORIGIN[1])
    other = scene.with_bands((7, 3, 2))  # false colour: NIR, red, green
    assert other.bands == (7, 3, 2) and other.georef == scene.georef
    assert not np.array_equal(np.asarray(other.rgb), np.asarray(scene.rgb))
    with pytest.raises(SceneError, match="band index 13 out of range"):
        scene.with_bands((13, 2, 1))


def test_a_plain_multiband_tiff_uses_the_library_default_and_no_georeference(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    arr = np.random.default_rng(0).integers(0, 4000, size=(5, 40, 30), dtype=np.uint16)
    path = tmp_path / "five.tif"
    tifffile.imwrite(path, arr, photometric="minisblack", planarconfig="separate")
    scene = load_scene(path)
    assert scene.band_count == 5 and scene.bands is None and scene.shown_bands == (0, 1, 2)
    assert scene.size == (30, 40) and scene.georef is None


def test_a_geotiff_nodata_value_is_left_out_of_the_stretch_as_predict_reads_it(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from aerith.imageio import read_array

    arr = np.full((3, 60, 80), -9999, np.int16)  # a nodata border around valid data
    arr[:, 10:50, 10:70] = np.random.default_rng(0).integers(100, 3000, size=(3, 40, 60))
    path = tmp_path / "border.tif"
    tifffile.imwrite(path, arr, photometric="minisblack", planarconfig="separate", extratags=[(42113, "s", 0, "-9999", True)])
    scene = load_scene(path)
    rgb = np.asarray(scene.rgb)
    assert np.array_equal(rgb, np.asarray(array_to_rgb(read_array(path))))  # as aerith predict reads the file
    assert 100 < rgb[10:50, 10:70].mean() < 160 and (rgb[:10] == 0).all()  # was: ~228, valid pixels blown to white
    assert scene.stored_dtype == "int16" and scene.describe()["dtype"] == "int16"
    assert any("nodata -9999" in note for note in scene.notes)
    other = scene.with_bands((2, 1, 0))  # another band choice keeps nodata out too
    assert (np.asarray(other.rgb)[:10] == 0).all() and other.stored_dtype == "int16"

    path = tmp_path / "odd-tag.tif"
    tifffile.imwrite(path, arr, photometric="minisblack", planarconfig="separate", extratags=[(42113, "s", 0, "none", True)])
    scene = load_scene(path)
    assert scene.array.dtype == np.int16 and any("'none' is not a number" in note for note in scene.notes)


def test_bad_uploads_are_scene_errors_naming_the_file(tmp_path):
    corrupt = tmp_path / "cut.png"
    corrupt.write_bytes(png_bytes()[:50])
    with pytest.raises(SceneError, match=r"cut\.png: cannot decode the image"):
        load_scene(corrupt)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(SceneError, match=r"empty\.jpg: the image is empty"):
        load_scene(empty)
    text = tmp_path / "notes.tif"
    text.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(SceneError, match=r"notes\.tif: cannot decode"):
        load_scene(text)
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes((200, 100)))
    with pytest.raises(SceneError, match=r"big\.png: the image is 200x100 = 20,000 pixels, over the limit of 10,000"):
        load_scene(big, max_pixels=10_000)
    with pytest.raises(SceneError, match="upload.png: cannot read the upload"):
        load_scene(tmp_path / "missing.png", name="upload.png")


def test_display_enlarges_small_scenes_and_reduces_large_ones(tmp_path):
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes((64, 32)))
    assert load_scene(small).display().size == (1024, 512)
    large = tmp_path / "large.png"
    Image.new("RGB", (3000, 1500)).save(large)
    assert load_scene(large).display().size == (1024, 512)


# -- turns and prompts ------------------------------------------------------------------------------------
def test_each_task_asks_with_its_canonical_prompt():
    assert make_turn("chat", "[CAP] Describe it.").prompt == "[CAP] Describe it."
    assert make_turn("question", " How many ships? ").prompt == vqa_prompt("How many ships?")
    assert make_turn("caption", "ignored").prompt == caption_prompt()
    assert make_turn("ground", "the red car").prompt == ground_prompt("the red car")
    turn = make_turn("classify", "", "forest;\n harbor , beach")
    assert turn.classes == ["forest", "harbor", "beach"] and turn.prompt == classify_prompt(["forest", "harbor", "beach"])
    assert parse_classes(DEFAULT_CLASSES)[-1] == "parking lot"


@pytest.mark.parametrize(
    ("task", "text", "classes", "message"),
    [
        ("question", "  ", "", "question needs a question"),
        ("ground", "", "", "referring expression"),
        ("chat", "", "", "chat needs a message"),
        ("classify", "", " , ", "needs a class list"),
        ("classify", "", "forest, Forest", "'Forest' is the same class as 'forest'"),
        ("classify", "", "parking lot, parking-lot", "'parking-lot' is the same class as 'parking lot'"),
        ("classify", "", "forest, ???", "'\\?\\?\\?' has no letters or digits"),
        ("detect", "x", "", "unknown task 'detect'"),
    ],
)
def test_a_turn_missing_what_its_task_needs_says_what(task, text, classes, message):
    with pytest.raises(TurnError, match=message):
        make_turn(task, text, classes)


def test_a_region_the_task_cannot_read_is_said_to_be_unused():
    region = [100, 200, 300, 400]
    assert make_turn("caption", "", region=region).shown_question == "Caption the scene. (region [100, 200, 300, 400] not used)"
    classify = make_turn("classify", "What is in [100, 200, 300, 400]?", "forest, harbor", region=region)
    assert classify.shown_question == "Classify: forest, harbor (region [100, 200, 300, 400] not used)"  # was: said nothing
    assert make_turn("classify", "", "forest, harbor").shown_question == "Classify: forest, harbor"
    assert make_turn("question", "What is in [100, 200, 300, 400]?", region=region).shown_question == "What is in [100, 200, 300, 400]?"


def test_history_puts_the_image_in_the_first_user_turn_and_answers_between():
    first = make_turn("caption", "")
    first.finish("A harbour.", (100, 100))
    second = make_turn("question", "What is in [10, 20, 300, 400]?")
    messages = chat_messages([first], second)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == [{"type": "image"}, {"type": "text", "text": caption_prompt()}]
    assert messages[1]["content"] == [{"type": "text", "text": "A harbour."}]
    assert messages[2]["content"] == [{"type": "text", "text": vqa_prompt("What is in [10, 20, 300, 400]?")}]
    alone = chat_messages([first], second, with_history=False)  # InstructBLIP
    assert alone == [{"role": "user", "content": [{"type": "image"}, messages[2]["content"][0]]}]


def test_answers_are_read_as_classes_and_boxes():
    turn = make_turn("classify", "", "forest, harbor")
    turn.finish("Harbour.", (200, 100))
    assert (turn.label, turn.match) == ("harbor", "fuzzy") and turn.boxes_grid == []
    turn = make_turn("classify", "", "forest, harbor")
    turn.finish("a desert", (200, 100))
    assert turn.label is None and "none of the classes" in turn.shown_answer()
    turn = make_turn("ground", "ships")
    turn.finish("[100, 200, 300, 400] and [500, 500, 600, 700]", (200, 100))
    assert turn.boxes_grid == [[100, 200, 300, 400], [500, 500, 600, 700]]
    assert turn.boxes_pixel == [[20.0, 20.0, 60.0, 40.0], [100.0, 50.0, 120.0, 70.0]]
    assert "2 boxes drawn" in turn.shown_answer()
    turn = make_turn("ground", "ships")
    turn.finish("no idea", (200, 100))
    assert turn.boxes_grid == [] and "no box in the answer" in turn.shown_answer()


# -- regions and drawing --------------------------------------------------------------------------------------
def test_two_clicks_make_a_region_on_the_grid_whatever_the_display_size():
    session = Session()
    with pytest.raises(RegionError, match="upload a scene first"):
        session.click(1, 1)
    session.load(load_scene(ASSETS / "ui-harbor.png"))
    assert session.base.size == (512, 512)
    assert session.click(384, 256) is None and session.corner == (750, 500)
    assert session.click(128, 64) == "[250, 125, 750, 500]"  # corners in any order
    assert session.region == [250, 125, 750, 500] and session.corner is None
    session.click(10, 10)
    with pytest.raises(RegionError, match="on one line"):
        session.click(10, 300)
    assert session.region == [250, 125, 750, 500]  # the old region stays


def test_render_draws_answer_boxes_in_their_turns_colours_and_the_region_in_yellow():
    session = Session()
    session.load(load_scene(ASSETS / "ui-harbor.png"))
    for k, box in enumerate(("[100, 100, 400, 400]", "[500, 500, 900, 900]")):
        turn = make_turn("ground", f"thing {k}")
        turn.finish(box, session.scene.size)
        session.turns.append(turn)
    session.click(512 * 0.3, 512 * 0.6)
    session.click(512 * 0.5, 512 * 0.8)
    shown = np.asarray(session.render())
    assert tuple(shown[128, 52]) == turn_colour(1)  # left edge of [100, 100, 400, 400] at 512 px
    assert tuple(shown[358, 257]) == turn_colour(2)
    assert tuple(shown[358, 154]) == REGION_COLOUR
    assert [b.label for b in session.boxes()] == ["1: thing 0", "2: thing 1"]
    assert tuple(np.asarray(session.base)[128, 52]) != turn_colour(1)  # the base image is untouched


# -- downloads ------------------------------------------------------------------------------------------------
def test_answers_json_holds_the_model_scene_and_turns(tmp_path):
    scene = load_scene(ASSETS / "ui-harbor.png")
    turn = make_turn("ground", "the ship", region=[1, 2, 3, 4])
    turn.finish("[0, 0, 500, 500]", scene.size)
    model = {"name": "m", "random_weights": True, "warning": "RANDOM"}
    path = write_answers(tmp_path / "a.json", model, scene, [turn])
    doc = json.loads(path.read_text())
    assert doc == answers_document(model, scene, [turn])
    assert doc["model"] == model and doc["scene"]["file"] == "ui-harbor.png" and len(doc["scene"]["sha256"]) == 64
    assert doc["turns"][0]["turn"] == 1 and doc["turns"][0]["region"] == [1, 2, 3, 4]
    assert doc["turns"][0]["boxes_pixel"] == [[0.0, 0.0, 64.0, 64.0]]
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file


def test_geojson_places_boxes_on_the_earth(tmp_path):
    pyproj = pytest.importorskip("pyproj")
    pytest.importorskip("shapely")
    scene = load_scene(S2)
    turn = make_turn("ground", "the car")
    turn.finish("[0, 0, 1000, 500]", scene.size)
    doc = json.loads(write_boxes_geojson(tmp_path / "b.geojson", scene, [turn]).read_text())
    (feature,) = doc["features"]
    assert feature["properties"]["label"] == "the car" and feature["properties"]["box_grid"] == [0, 0, 1000, 500]
    corners = np.array(feature["geometry"]["coordinates"][0])
    to_lonlat = pyproj.Transformer.from_crs(S2_CRS, "EPSG:4326", always_xy=True)
    x0, y0 = S2_ORIGIN
    for x, y in ((x0, y0), (x0 + 128 * S2_PIXEL, y0 - 64 * S2_PIXEL)):  # the box's upper-left and lower-right corners
        lonlat = np.array(to_lonlat.transform(x, y))
        assert np.abs(corners - lonlat).max(axis=1).min() < 1e-6, (lonlat, corners)
    assert 12 < corners[:, 0].min() < 15 and 52 < corners[:, 1].max() < 54
    with pytest.raises(ValueError, match="not georeferenced"):
        write_boxes_geojson(tmp_path / "c.geojson", load_scene(ASSETS / "ui-harbor.png"), [turn])


def test_session_downloads_write_geojson_only_for_georeferenced_scenes(tmp_path):
    pytest.importorskip("shapely")
    session = Session()
    session.load(load_scene(ASSETS / "ui-harbor.png"))
    answers, geojson = session.write_downloads(tmp_path, {"name": "m"})
    assert answers.name == "ui-harbor-answers.json" and geojson is None and answers.parent.name == session.id
    session.load(load_scene(S2))
    turn = make_turn("ground", "the car")
    turn.finish("[0, 0, 500, 500]", session.scene.size)
    session.turns.append(turn)
    answers, geojson = session.write_downloads(tmp_path, {"name": "aerith-tiny", "random_weights": True})
    assert geojson is not None and json.loads(geojson.read_text())["type"] == "FeatureCollection"
    (feature,) = json.loads(geojson.read_text())["features"]  # the layer alone says its model's weights are random
    assert feature["properties"]["model"] == "aerith-tiny" and feature["properties"]["random_weights"] is True


# -- asking through the queue ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service(tiny_vlm):
    from aerith.serve.service import ModelService

    service = ModelService(tiny_vlm, name="aerith-tiny").start()
    yield service
    service.close()


def _collect(service, messages, images, max_tokens):
    from aerith.ui.asking import stream_answer

    async def run():
        return [item async for item in stream_answer(service, messages, images, max_tokens)]

    # in a thread of its own: Playwright's sync API keeps an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_streamed_pieces_add_up_to_the_library_answer(service, tiny_vlm):
    from aerith.serve.engine import Completion

    image = Image.open(ASSETS / "ui-harbor.png").convert("RGB")
    turn = make_turn("question", "How many ships?")
    items = _collect(service, chat_messages([], turn), [image], 6)
    *pieces, completion = items
    assert isinstance(completion, Completion) and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == completion.text
    assert completion.text == tiny_vlm.generate([image], [turn.prompt], max_new_tokens=6)[0]


def test_a_page_that_stops_reading_cancels_its_answer(service, monkeypatch):
    """Gradio closes the event's generator when the tab goes: the row ends at its next token, not at max_tokens."""
    from aerith.ui.asking import stream_answer

    n = 400
    settings_for = service.settings_for
    monkeypatch.setattr(service, "settings_for", lambda prepared, max_tokens: settings_for(prepared, max_tokens, min_tokens=max_tokens))
    futures = []
    submit = service.batcher.submit
    monkeypatch.setattr(service.batcher, "submit", lambda *a, **k: futures.append(submit(*a, **k)) or futures[-1])
    image = Image.open(ASSETS / "ui-harbor.png").convert("RGB")

    async def read_one_piece_and_leave():
        answer = stream_answer(service, chat_messages([], make_turn("caption", "")), [image], n, every=0.01)
        assert isinstance(await answer.__anext__(), str)
        await answer.aclose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, read_one_piece_and_leave()).result()
    completion = futures[0].result(timeout=60)
    assert completion.finish_reason == "cancelled" and completion.completion_tokens < n


def test_asking_beyond_the_context_or_while_loading_is_a_message(service):
    from aerith.ui.asking import AskError, current_service

    image = Image.open(ASSETS / "ui-harbor.png").convert("RGB")
    with pytest.raises(AskError, match="exceed the model's context"):
        _collect(service, chat_messages([], make_turn("caption", "")), [image], 100_000)
    with pytest.raises(AskError, match="still loading"):
        current_service(lambda: None)
    history = [Turn("chat", "x", "word " * 400, answer="word " * 400)]  # over the 512-token context
    with pytest.raises(AskError, match="clear the conversation"):
        _collect(service, chat_messages(history, make_turn("chat", "more")), [image], 8)


def test_an_instructblip_model_is_asked_the_turn_alone():
    import aerith
    from aerith.serve.engine import Completion
    from aerith.serve.service import ModelService
    from aerith.ui.asking import describe_model

    vlm = aerith.load_vlm("instructblip-tiny", seed=0, device="cpu")
    service = ModelService(vlm, name="instructblip-tiny").start()
    try:
        model = describe_model(service)
        assert model["history"] is False and model["random_weights"] is True
        image = Image.open(ASSETS / "ui-harbor.png").convert("RGB")
        first = make_turn("caption", "")
        first.finish("a harbour", image.size)
        turn = make_turn("question", "How many ships?")
        *_, completion = _collect(service, chat_messages([first], turn, with_history=model["history"]), [image], 6)
        assert isinstance(completion, Completion)
        assert completion.text == vlm.generate([image], [turn.prompt], max_new_tokens=6)[0]
    finally:
        service.close()
