"""The web page in a real browser (headless Chromium through Playwright); a screenshot of each flow
is written under the test's temporary folder (``pytest --basetemp DIR`` keeps them where you say).

Flows against ``aerith serve aerith-tiny --ui`` (the real random-weight model): the page loads
with the model's provenance and the RANDOM WEIGHTS warning; a question asked on the page gets
the API's own answer, through the API's queue. Flows against the page over a scripted model
(see ``conftest.py``): ground draws labelled boxes; classify names one of the classes; a region
drawn with two clicks reaches the prompt; the history reaches the next turn; a corrupt or
oversized upload shows a message; the 13-band GeoTIFF example shows Sentinel-2 RGB and
downloads GeoJSON.
"""

from __future__ import annotations

import io
import json
import re
import urllib.request

import numpy as np
import pytest
from PIL import Image

from aerith.prompts import vqa_prompt
from aerith.serve.images import data_url
from aerith.ui.draw import turn_colour
from aerith.ui.examples import ASSETS, S2_CRS, S2_ORIGIN
from tests.ui.conftest import (
    GROUND_ANSWER,
    HELD,
    MARKUP,
    MARKUP_ANSWER,
    SCRIPTED_MAX_MB,
    SCRIPTED_MAX_PIXELS,
    png_bytes,
)

HARBOR = ASSETS / "ui-harbor.png"
# pandas 3 deprecations inside Gradio's queue, not ours
pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")


# -- driving the page ----------------------------------------------------------------------------------
def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#aerith-upload")
    page.wait_for_function("!document.querySelector('#aerith-model').innerText.includes('Loading')")


def upload(page, path) -> None:
    page.set_input_files("#aerith-upload input[type=file]", str(path))
    page.wait_for_function(
        "(name) => document.querySelector('#aerith-scene-info').innerText.includes(name)"
        " || document.querySelector('#aerith-status .aerith-error') !== null",
        arg=path.name,
    )
    if page.locator("#aerith-status .aerith-error").count() == 0:
        wait_for_scene(page)


def wait_for_scene(page) -> None:
    page.wait_for_function("() => { const i = document.querySelector('#aerith-scene img'); return i && i.complete && i.naturalWidth > 0; }")


def choose_task(page, label: str) -> None:
    page.locator("#aerith-task label", has_text=label).click()


def ask(page, turn: int, text: str | None = None, expect: str | None = None) -> str:
    """Type ``text`` (if given), press Ask, wait for answer number ``turn`` (or for ``expect``, or a
    new error message); the status line."""
    if text is not None:
        page.fill("#aerith-message textarea", text)
    errors = page.locator("#aerith-status .aerith-error")
    before = errors.inner_text() if errors.count() else ""
    page.click("#aerith-send")
    page.wait_for_function(
        """([expected, before]) => {
            const status = document.querySelector('#aerith-status');
            const error = status.querySelector('.aerith-error');
            return status.innerText.includes(expected) || (error !== null && error.innerText !== before);
        }""",
        arg=[expect or f"Answer {turn}:", before],
    )
    return page.locator("#aerith-status").inner_text()


def shown_scene(page) -> Image.Image:
    """The scene image the page shows now (fetched from its own URL)."""
    src = page.locator("#aerith-scene img").get_attribute("src")
    return Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")


def click_scene(page, fx: float, fy: float) -> None:
    """Click at a fraction ``(fx, fy)`` of the displayed image (its content box, object-fit included)."""
    wait_for_scene(page)
    img = page.locator("#aerith-scene img")
    box = img.bounding_box()
    nw, nh = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    scale = min(box["width"] / nw, box["height"] / nh)
    left = box["x"] + (box["width"] - nw * scale) / 2
    top = box["y"] + (box["height"] - nh * scale) / 2
    page.mouse.click(left + fx * nw * scale, top + fy * nh * scale)


def download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    with open(info.value.path(), "rb") as f:
        return f.read()


def edge_has(shown: np.ndarray, x: float, y: float, colour: tuple[int, int, int]) -> bool:
    """Whether a pixel within 2 px of ``(x, y)`` along the row has ``colour`` (a box's vertical edge)."""
    row = shown[round(y), max(0, round(x) - 2) : round(x) + 3]
    return bool((row == colour).all(axis=1).any())


def page_text(page) -> str:
    return page.locator("body").inner_text()


# -- against aerith serve --ui (the real tiny model) -----------------------------------------------------
def test_page_loads_beside_the_api_with_provenance_and_random_weights_warning(page, api_server, tmp_path):
    open_page(page, api_server.url + "/ui/")
    page.screenshot(path=tmp_path / "loaded.png", full_page=True)
    model = page.locator("#aerith-model").inner_text()
    assert "aerith-tiny" in model and "random-init" in model and "/v1" in model
    warning = page.locator("#aerith-warning .aerith-random")
    assert warning.is_visible()
    assert "RANDOM WEIGHTS" in warning.inner_text() and "noise" in warning.inner_text()
    for label in ("Chat", "Classify", "Question", "Caption", "Ground"):
        assert page.locator("#aerith-task label", has_text=label).count() == 1
    assert page.get_by_text("Harbour (PNG): ground a ship").is_visible()  # the example scenes
    with urllib.request.urlopen(api_server.url + "/v1/models") as r:  # the API lives on beside the page
        assert json.load(r)["data"][0]["aerith"]["random_weights"] is True


def test_a_question_on_the_page_gets_the_apis_answer_through_the_shared_queue(page, api_server, tmp_path):
    def batches() -> float:
        with urllib.request.urlopen(api_server.url + "/metrics") as r:
            return float(re.search(r"^aerith_batch_size_count (\S+)$", r.read().decode(), re.MULTILINE).group(1))

    open_page(page, api_server.url + "/ui/")
    upload(page, HARBOR)
    choose_task(page, "Question")
    page.fill("#aerith-max-tokens input[type=number]", "6")
    page.locator("#aerith-max-tokens input[type=number]").press("Enter")
    before = batches()
    status = ask(page, 1, "How many ships are there?")
    page.screenshot(path=tmp_path / "question.png", full_page=True)
    assert "Answer 1:" in status, status
    assert batches() == before + 1  # the page's question went through the API's batching queue

    body = json.dumps({
        "model": "aerith-tiny", "max_tokens": 6,
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url(HARBOR)}},
            {"type": "text", "text": vqa_prompt("How many ships are there?")},
        ]}],
    }).encode()  # fmt: skip
    request = urllib.request.Request(api_server.url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as r:
        api_answer = json.load(r)["choices"][0]["message"]["content"]
    saved = json.loads(download(page, "#aerith-json"))
    assert saved["turns"][0]["answer"] == api_answer  # same model, same prompt, greedy: the same answer
    assert saved["model"]["random_weights"] is True and "RANDOM" in saved["model"]["warning"]
    assert saved["turns"][0]["prompt"] == vqa_prompt("How many ships are there?")


# -- against the page alone over the scripted model -------------------------------------------------------
def test_ground_draws_the_answer_as_a_labelled_box(page, scripted_ui, scripted_service, tmp_path):
    open_page(page, scripted_ui.url + "/")
    upload(page, HARBOR)
    before = np.asarray(shown_scene(page))
    choose_task(page, "Ground")
    status = ask(page, 1, "the white ship on the left")
    page.screenshot(path=tmp_path / "ground.png", full_page=True)
    assert "Answer 1:" in status, status
    assert scripted_service.engine.prompts[-1].endswith("[VG] Locate: the white ship on the left [/INST]")

    after = np.asarray(shown_scene(page))
    h, w = after.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in re.findall(r"\d+", GROUND_ANSWER))
    left, mid_y = x1 * w / 1000, (y1 + y2) / 2 * h / 1000
    colour = turn_colour(1)
    assert edge_has(after, left, mid_y, colour)  # the box's left edge, in the first turn's colour
    assert not edge_has(before, left, mid_y, colour)
    tab = after[round(y1 * h / 1000) - 8, round(left) + 4 : round(left) + 40]  # the label's tab above the box
    assert (tab == colour).all(axis=1).mean() > 0.3
    assert "1 box drawn" in page.locator("#aerith-chat").inner_text()

    saved = json.loads(download(page, "#aerith-json"))
    assert saved["turns"][0]["boxes_grid"] == [[x1, y1, x2, y2]]
    assert saved["turns"][0]["boxes_pixel"] == [[x1 * 128 / 1000, y1 * 128 / 1000, x2 * 128 / 1000, y2 * 128 / 1000]]
    assert saved["scene"]["file"] == "ui-harbor.png" and saved["scene"]["georeferenced"] is False
    assert not page.locator("#aerith-geojson").is_visible()  # a PNG has no georeference


def test_classify_with_an_edited_class_list_names_one_of_the_classes(page, scripted_ui, scripted_service, tmp_path):
    open_page(page, scripted_ui.url + "/")
    upload(page, ASSETS / "ui-industrial.png")
    choose_task(page, "Classify")
    page.fill("#aerith-classes textarea", " , ")
    assert "needs a class list" in ask(page, 1, expect="needs a class list")  # an empty list is a message
    assert page.locator("#aerith-chat").inner_text().strip() == "Conversation"  # and no turn
    page.fill("#aerith-classes textarea", "forest, harbor, industrial area")
    status = ask(page, 1)
    page.screenshot(path=tmp_path / "classify.png", full_page=True)
    assert "Answer 1:" in status, status
    assert "from: forest, harbor, industrial area." in scripted_service.engine.prompts[-1]
    chat = page.locator("#aerith-chat").inner_text()
    assert "industrial area" in chat and "match: contained" in chat
    saved = json.loads(download(page, "#aerith-json"))
    assert saved["turns"][0]["label"] in ("forest", "harbor", "industrial area")
    assert saved["turns"][0]["label"] == "industrial area"


def test_a_region_drawn_with_two_clicks_reaches_the_prompt_and_history_the_next_turn(page, scripted_ui, scripted_service, tmp_path):
    open_page(page, scripted_ui.url + "/")
    upload(page, HARBOR)
    page.fill("#aerith-message textarea", "What is in")
    click_scene(page, 0.20, 0.30)
    page.wait_for_function("document.querySelector('#aerith-region').innerText.includes('First corner')")
    click_scene(page, 0.60, 0.80)
    page.wait_for_function("document.querySelector('#aerith-region').innerText.includes('Region [')")
    page.screenshot(path=tmp_path / "region.png", full_page=True)
    text = page.locator("#aerith-message textarea").input_value()
    match = re.fullmatch(r"What is in (\[(\d+), (\d+), (\d+), (\d+)\])", text)
    assert match, text
    region = [int(v) for v in match.groups()[1:]]
    assert np.allclose(region, [200, 300, 600, 800], atol=6), region  # the clicks, on the 0-1000 grid
    shown = np.asarray(shown_scene(page))
    h, w = shown.shape[:2]
    assert edge_has(shown, region[0] * w / 1000, (region[1] + region[3]) / 2 * h / 1000, (255, 221, 0))  # drawn in yellow

    status = ask(page, 1)
    assert "Answer 1:" in status, status
    assert f"What is in {match.group(1)} [/INST]" in scripted_service.engine.prompts[-1]
    status = ask(page, 2, "And next to it?")
    page.screenshot(path=tmp_path / "second-turn.png", full_page=True)
    assert "Answer 2:" in status, status
    prompt = scripted_service.engine.prompts[-1]
    # the first turn and its answer come first, then the new question (Llama-2 chat format)
    assert prompt.index(f"What is in {match.group(1)} [/INST] echo: What is in") < prompt.index("And next to it? [/INST]")
    assert prompt.count("<image>") == 1


def wait_status(page, expected: str) -> str:
    """Wait for the status line to say ``expected``; the status line."""
    page.wait_for_function("(expected) => document.querySelector('#aerith-status').innerText.includes(expected)", arg=expected)
    return page.locator("#aerith-status").inner_text()


def test_nothing_covers_the_scene_corners_where_box_labels_and_clicks_go(page, scripted_ui, tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (300, 100), (90, 90, 90)).save(wide)  # shown 1024 x 341: its top edge is the component's
    open_page(page, scripted_ui.url + "/")
    for scene in (HARBOR, wide):
        if page.locator("#aerith-upload button[aria-label='Clear']").count():
            page.locator("#aerith-upload button[aria-label='Clear']").click()
            page.wait_for_function("document.querySelector('#aerith-scene-info').innerText.trim() === ''")
        upload(page, scene)
        covered = page.locator("#aerith-scene img").evaluate(
            """img => {
                const r = img.getBoundingClientRect();
                const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
                const w = img.naturalWidth * s, h = img.naturalHeight * s;
                const left = r.left + (r.width - w) / 2, top = r.top + (r.height - h) / 2;
                const points = [];
                for (const fx of [0.01, 0.25, 0.5, 0.75, 0.99]) for (const fy of [0.01, 0.05, 0.95, 0.99])
                    points.push([fx, fy, left + fx * w, top + fy * h]);
                return points.filter(([fx, fy, x, y]) => document.elementFromPoint(x, y) !== img)
                             .map(([fx, fy, x, y]) => [fx, fy, document.elementFromPoint(x, y).outerHTML.slice(0, 80)]);
            }"""
        )
        assert covered == [], (scene.name, covered)  # was: the buttons at the top right took the clicks
    img = page.locator("#aerith-scene img")
    box = img.bounding_box()
    nw, nh = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    scale = min(box["width"] / nw, box["height"] / nh)
    x0, y0 = (box["width"] - nw * scale) / 2, (box["height"] - nh * scale) / 2
    shot = np.asarray(Image.open(io.BytesIO(img.screenshot())).convert("RGB")).astype(int)
    inset = 6  # the block's rounded corners
    content = shot[round(y0) + inset : round(y0 + nh * scale) - inset, round(x0) + inset : round(x0 + nw * scale) - inset]
    drawn_over = np.abs(content - 90).max(axis=2) > 8  # the grey scene as the browser paints it
    assert not drawn_over.any(), np.argwhere(drawn_over)[:5]  # was: the label badge hid the top left (a box's label)
    click_scene(page, 0.99, 0.02)  # the top-right corner takes a click
    page.wait_for_function("document.querySelector('#aerith-region').innerText.includes('First corner')")
    click_scene(page, 0.5, 0.5)
    page.wait_for_function("document.querySelector('#aerith-region').innerText.includes('Region [')")
    region = [int(v) for v in re.findall(r"\d+", page.locator("#aerith-message textarea").input_value())]
    assert np.allclose(region, [500, 20, 990, 500], atol=6), region


def test_the_chat_shows_the_models_text_as_written(page, scripted_ui, tmp_path):
    open_page(page, scripted_ui.url + "/")
    upload(page, HARBOR)
    status = ask(page, 1, f"{MARKUP} <i>mine</i> **too**")
    page.screenshot(path=tmp_path / "markup.png", full_page=True)
    assert "Answer 1:" in status, status
    bubbles = page.locator("#aerith-chat .message-content").all_inner_texts()
    assert bubbles[0] == f"{MARKUP} <i>mine</i> **too**"
    assert bubbles[1] == MARKUP_ANSWER + "\n\n(1 box drawn on the scene)"  # was: a heading, italics, '&lt;b&gt;' in the code
    chat = page.locator("#aerith-chat")
    assert chat.locator("img, b, i, em, h1, code").count() == 0
    assert page.evaluate("window.aerithInjected") is None


def held_question(page, engine, text: str) -> None:
    """Ask ``text`` (a held turn) and wait until the engine holds it."""
    engine.held.clear()
    engine.release.clear()
    page.fill("#aerith-message textarea", f"{HELD} {text}")
    page.click("#aerith-send")
    assert engine.held.wait(60), "the held question did not reach the engine"


def test_an_answer_arriving_after_the_scene_or_conversation_changed_is_not_added(page, scripted_ui, scripted_service, tmp_path):
    engine = scripted_service.engine
    open_page(page, scripted_ui.url + "/")
    upload(page, HARBOR)
    try:
        held_question(page, engine, "what is here?")
        page.locator("#aerith-upload button[aria-label='Clear']").click()  # another scene while the model answers
        page.wait_for_function("document.querySelector('#aerith-scene-info').innerText.trim() === ''")
        upload(page, ASSETS / "ui-airport.jpg")
    finally:
        engine.release.set()
    status = wait_status(page, "not part of this conversation")
    page.screenshot(path=tmp_path / "late-answer.png", full_page=True)
    assert "(asked about ui-harbor.png) came after the scene changed" in status, status
    assert page.locator("#aerith-chat").inner_text().strip() == "Conversation"  # was: the harbour's answer, boxes on the airport
    assert not page.locator("#aerith-json").is_visible()
    status = ask(page, 1, "And here?")
    assert "Answer 1:" in status, status
    assert HELD not in engine.prompts[-1]
    saved = json.loads(download(page, "#aerith-json"))
    assert saved["scene"]["file"] == "ui-airport.jpg" and [t["text"] for t in saved["turns"]] == ["And here?"]

    try:  # Clear conversation while the model answers
        held_question(page, engine, "and now?")
        page.click("#aerith-clear")
        page.wait_for_function("document.querySelector('#aerith-chat').innerText.trim() === 'Conversation'")
    finally:
        engine.release.set()
    status = wait_status(page, "not part of this conversation")
    assert "came after the conversation changed" in status, status
    assert page.locator("#aerith-chat").inner_text().strip() == "Conversation"
    status = ask(page, 1, "Once more?")
    assert "Answer 1:" in status, status
    assert HELD not in engine.prompts[-1] and "And here?" not in engine.prompts[-1]


def test_a_corrupt_upload_shows_a_message_not_a_traceback(page, scripted_ui, tmp_path):
    open_page(page, scripted_ui.url + "/")
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(png_bytes()[:60])  # a PNG cut short
    upload(page, corrupt)
    page.wait_for_selector("#aerith-status .aerith-error")
    page.screenshot(path=tmp_path / "corrupt.png", full_page=True)
    message = page.locator("#aerith-status .aerith-error").inner_text()
    assert "broken.png" in message and "cannot decode" in message
    assert "Traceback" not in page_text(page)

    big = tmp_path / "huge.png"
    Image.new("RGB", (400, 400), (40, 90, 160)).save(big)  # few bytes, many pixels
    upload(page, big)
    page.wait_for_function("document.querySelector('#aerith-status').innerText.includes('huge.png')")
    page.screenshot(path=tmp_path / "oversized.png", full_page=True)
    message = page.locator("#aerith-status .aerith-error").inner_text()
    assert "160,000 pixels" in message and f"{SCRIPTED_MAX_PIXELS:,}" in message
    assert page.locator("#aerith-scene img").count() == 0  # nothing half-loaded is shown

    status = ask(page, 1, "anything?", expect="upload a scene")  # asking with no scene is a message too
    assert "upload a scene" in status

    heavy = tmp_path / "heavy.png"
    heavy.write_bytes(png_bytes((300, 300)))  # 270 kB of noise: over the upload limit, under the pixel limit
    assert heavy.stat().st_size > SCRIPTED_MAX_MB * 1024 * 1024
    page.set_input_files("#aerith-upload input[type=file]", str(heavy))
    toast = page.get_by_text("exceed the maximum allowed size")  # Gradio's own check, before anything is sent
    toast.wait_for()
    page.screenshot(path=tmp_path / "too-many-bytes.png", full_page=True)
    assert "heavy.png" in page_text(page) and "Traceback" not in page_text(page)


def test_the_geotiff_example_shows_sentinel2_rgb_and_downloads_geojson(page, scripted_ui, tmp_path):
    pyproj = pytest.importorskip("pyproj")
    open_page(page, scripted_ui.url + "/")
    page.get_by_text("Parking lot (13-band GeoTIFF").click()
    page.wait_for_function("document.querySelector('#aerith-scene-info').innerText.includes('ui-parking-s2.tif')")
    info = page.locator("#aerith-scene-info").inner_text()
    assert "13 band(s) of uint16" in info and "bands 3, 2, 1" in info and S2_CRS in info
    assert page.locator("#aerith-band-r input").input_value() == "3 (B04)"
    assert page.locator("#aerith-band-b input").input_value() == "1 (B02)"
    assert page.locator("#aerith-message textarea").input_value() == "the large yellow vehicle at the top right"
    page.locator("#aerith-band-r input").click()  # false colour: NIR (B08) as red
    page.get_by_role("option", name="7 (B08)").click()
    page.wait_for_function("document.querySelector('#aerith-scene-info').innerText.includes('bands 7, 2, 1')")
    assert "the conversation starts over" in page.locator("#aerith-status").inner_text()
    page.fill("#aerith-message textarea", "the large yellow vehicle at the top right")
    status = ask(page, 1)
    page.screenshot(path=tmp_path / "geotiff.png", full_page=True)
    assert "Answer 1:" in status, status
    assert json.loads(download(page, "#aerith-json"))["scene"]["bands_shown"] == [7, 2, 1]
    geojson = json.loads(download(page, "#aerith-geojson"))
    (feature,) = geojson["features"]
    assert feature["properties"]["box_grid"] == [250, 300, 500, 700]
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", S2_CRS, always_xy=True)
    xs, ys = to_utm.transform(*zip(*feature["geometry"]["coordinates"][0]))
    # 128 px of 10 m from the upper-left corner: x 320-640 m east, y 384-896 m south
    assert min(xs) == pytest.approx(S2_ORIGIN[0] + 320, abs=0.5) and max(xs) == pytest.approx(S2_ORIGIN[0] + 640, abs=0.5)
    assert max(ys) == pytest.approx(S2_ORIGIN[1] - 384, abs=0.5) and min(ys) == pytest.approx(S2_ORIGIN[1] - 896, abs=0.5)
