"""The Gradio page: upload or pick a scene, choose a task, ask, see the answer drawn on the scene.

Every handler reports failures in the page's status line (``#aerith-status``): an
unreadable or oversized upload, a missing question, a conversation longer than the model's
context, a full queue. Nothing reaches the page as a traceback: unexpected errors are logged
and shown as one line.

Regions: Gradio has no box-drawing tool for images any more, so a region is drawn with two
clicks on the scene (``gr.Image.select``): the first sets a corner (a yellow cross), the
second the opposite corner; the region is drawn in yellow and its ``[x1, y1, x2, y2]`` on the
0-1000 grid is put into the message box, where it stays editable.
"""

from __future__ import annotations

import asyncio
import html
import logging
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from aerith.serve.engine import Completion
from aerith.ui.asking import (
    AskError,
    ServiceGetter,
    current_service,
    describe_model,
    stream_answer,
)
from aerith.ui.conversation import (
    DEFAULT_CLASSES,
    UI_TASKS,
    TurnError,
    chat_messages,
    make_turn,
)
from aerith.ui.examples import example_rows
from aerith.ui.scene import SceneError, load_scene
from aerith.ui.session import RegionError, Session

logger = logging.getLogger(__name__)

TASK_LABELS = {"chat": "Chat", "classify": "Classify", "question": "Question", "caption": "Caption", "ground": "Ground"}
MESSAGE_LABELS = {
    "chat": ("Message", "Anything, e.g. What is in [120, 80, 560, 430]? (task tokens such as [CAP] allowed)"),
    "question": ("Question", "e.g. How many ships are there?"),
    "ground": ("Referring expression", "e.g. the large white ship"),
    "classify": ("Message (not used by classify)", ""),
    "caption": ("Message (not used by caption)", ""),
}
NO_REGION = "No region drawn: click two opposite corners on the scene to mark one."
STREAM_EVERY = 0.1  # seconds between streamed updates of the chat
CSS = """
#aerith-warning .aerith-random { background: #b91c1c; color: #fff; padding: 10px 14px; border-radius: 6px; font-weight: 600; }
#aerith-status .aerith-error { background: #fee2e2; color: #7f1d1d; border: 1px solid #b91c1c; padding: 8px 12px; border-radius: 6px; }
#aerith-status .aerith-info { color: #374151; padding: 4px 2px; }
#aerith-chat .message-content { white-space: pre-wrap; }
"""


@dataclass(frozen=True)
class PageSettings:
    """How the page behaves.

    Args:
        source: what was loaded (a preset name or folder), shown as the model's provenance.
        max_image_pixels: larger uploads (width x height) are refused with a message.
        max_tokens: the answer-length slider's start value.
        downloads: folder for the per-session JSON/GeoJSON files.
        api_url: where the HTTP API of the same model is, when the page is mounted beside it.
    """

    source: str
    max_image_pixels: int = 25_000_000
    max_tokens: int = 64
    downloads: Path = Path(".")
    api_url: str | None = None

    def __post_init__(self) -> None:
        if self.max_image_pixels < 1 or self.max_tokens < 1:
            raise ValueError(f"max_image_pixels and max_tokens must be >= 1, got {self.max_image_pixels}, {self.max_tokens}")


def _error(message: str) -> str:
    return f'<div class="aerith-error" role="alert">{html.escape(message)}</div>'


def _info(message: str) -> str:
    return f'<div class="aerith-info">{html.escape(message)}</div>'


def provenance(model: dict[str, Any], api_url: str | None) -> str:
    """The model's provenance as the page shows it (Markdown)."""
    parts = [
        f"**Model** `{model['name']}`",
        f"loaded from `{model['source']}`",
        f"kind `{model['kind']}`",
        f"training state `{model['training_state']}`",
    ]
    if model.get("context_length"):
        parts.append(f"context {model['context_length']} tokens")
    text = " · ".join(parts)
    shared = f"Answers come from the same model and batching queue (up to {model['max_batch']} requests at once)"
    text += f"\n\n{shared} as the HTTP API at `{api_url}`." if api_url else f"\n\n{shared} for every visitor."
    if not model["history"]:
        text += " This model answers each turn on its own (InstructBLIP reads no history)."
    return text


def warning_html(model: dict[str, Any]) -> str:
    if not model["random_weights"]:
        return ""
    return f'<div class="aerith-random" role="alert">RANDOM WEIGHTS: {html.escape(model["warning"] or "")}</div>'


def _text(text: str) -> str:
    """Model and user text for the chat (shown as written, not as Markdown): HTML-like parts shown, not interpreted."""
    return html.escape(text, quote=False)


def _chat_rows(session: Session) -> list[dict[str, str]]:
    rows = []
    for turn in session.turns:
        rows += [{"role": "user", "content": _text(turn.shown_question)}, {"role": "assistant", "content": _text(turn.shown_answer())}]
    return rows


def _scene_info(session: Session) -> str:
    scene = session.scene
    if scene is None:
        return ""
    w, h = scene.size
    text = f"**{scene.name}**: {w} x {h} px, {scene.band_count} band(s) of {scene.stored_dtype}"
    if scene.band_count > 3 or scene.bands is not None:
        text += f", shown as RGB: bands {', '.join(map(str, scene.shown_bands))} (0-based)"
    if scene.georef is not None:
        text += f", georeferenced ({scene.georef.crs_name})"
    for note in scene.notes:
        text += f"\n\n{note}"
    return text


def _band_choices(session: Session) -> list[tuple[str, int]]:
    scene = session.scene
    assert scene is not None
    names = scene.band_names
    return [(f"{i}" + (f" ({names[i]})" if i < len(names) and names[i] else ""), i) for i in range(scene.band_count)]


def build_page(get_service: ServiceGetter, settings: PageSettings) -> gr.Blocks:
    """The page as a ``gr.Blocks`` (queue set up; mount it with :func:`aerith.ui.server.mount_ui`).

    Args:
        get_service: returns the served model's service, or ``None`` while it loads.
        settings: see :class:`PageSettings`.
    """

    def model_facts() -> dict[str, Any] | None:
        service = get_service()
        return describe_model(service, settings.source) if service is not None else None

    def forget(session: Session | None) -> None:  # the visitor's tab closed: remove its downloads
        if session is not None:
            shutil.rmtree(settings.downloads / session.id, ignore_errors=True)

    # Gradio's cache (uploads, shown images, downloads) is swept hourly of files older than a day
    with gr.Blocks(title="Aerith", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        session_state = gr.State(None, delete_callback=forget)  # a Session, made at the visitor's first event
        gr.Markdown("## Aerith: look at a scene, ask, see the boxes")
        model_md = gr.Markdown("Loading the model ...", elem_id="aerith-model")
        warning = gr.HTML("", elem_id="aerith-warning")
        loading_timer = gr.Timer(1.0, active=True)
        with gr.Row():
            with gr.Column(scale=2):
                upload = gr.File(
                    label="Scene: PNG, JPEG or (multi-band) GeoTIFF",
                    file_types=[".png", ".jpg", ".jpeg", ".tif", ".tiff"],
                    type="filepath",
                    elem_id="aerith-upload",
                )
                scene_md = gr.Markdown("", elem_id="aerith-scene-info")
                with gr.Row(visible=False) as band_row:
                    band_r = gr.Dropdown(label="Red band", choices=[], elem_id="aerith-band-r")
                    band_g = gr.Dropdown(label="Green band", choices=[], elem_id="aerith-band-g")
                    band_b = gr.Dropdown(label="Blue band", choices=[], elem_id="aerith-band-b")
                task = gr.Radio(
                    [(TASK_LABELS[t], t) for t in UI_TASKS], value="chat", label="Task", elem_id="aerith-task"
                )
                classes = gr.Textbox(
                    DEFAULT_CLASSES, label="Classes (comma-separated, editable)", visible=False, elem_id="aerith-classes"
                )
                message = gr.Textbox(
                    label=MESSAGE_LABELS["chat"][0], placeholder=MESSAGE_LABELS["chat"][1], lines=2, elem_id="aerith-message"
                )
                max_tokens = gr.Slider(1, 1024, value=settings.max_tokens, step=1, label="Longest answer (tokens)", elem_id="aerith-max-tokens")
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="aerith-send")
                    clear = gr.Button("Clear conversation", elem_id="aerith-clear")
                examples = example_rows()
                if examples:
                    gr.Examples(
                        [[str(e.path), e.task, e.text] for e in examples],
                        inputs=[upload, task, message],
                        example_labels=[e.label for e in examples],
                        label="Example scenes (click to load)",
                        elem_id="aerith-examples",
                    )
            with gr.Column(scale=3):
                # No label badge and no buttons: Gradio draws both over the image's top corners, where
                # they hid the labels of boxes at the top left and took the clicks meant for a corner
                # at the top right.
                image = gr.Image(
                    label="Scene",
                    show_label=False,
                    interactive=False,
                    type="pil",
                    format="png",
                    elem_id="aerith-scene",
                    buttons=[],
                )
                with gr.Row():
                    region_md = gr.Markdown(NO_REGION, elem_id="aerith-region")
                    clear_region = gr.Button("Clear region", size="sm", elem_id="aerith-clear-region")
        status = gr.HTML("", elem_id="aerith-status")
        # The turns as written, not as Markdown: a caption's '*' or '#', or '<b>' in backticks, is the model's
        # text (html-escaped by _text, which Markdown undid inside code spans: '&lt;b&gt;' was shown).
        chatbot = gr.Chatbot(label="Conversation", elem_id="aerith-chat", height=360, render_markdown=False, latex_delimiters=[])
        with gr.Row():
            json_dl = gr.DownloadButton("Download answers (JSON)", visible=False, elem_id="aerith-json")
            geojson_dl = gr.DownloadButton("Download boxes (GeoJSON)", visible=False, elem_id="aerith-geojson")

        # -- the model's provenance, once it is loaded -------------------------------------------
        def show_model() -> dict:
            model = model_facts()
            if model is None:
                return {model_md: "Loading the model ...", warning: "", loading_timer: gr.Timer(active=True)}
            return {
                model_md: provenance(model, settings.api_url),
                warning: warning_html(model),
                loading_timer: gr.Timer(active=False),
            }

        page.load(show_model, None, [model_md, warning, loading_timer], show_progress="hidden")
        loading_timer.tick(show_model, None, [model_md, warning, loading_timer], show_progress="hidden")

        # -- the scene ------------------------------------------------------------------------------
        def scene_outputs(session: Session, note: str = "") -> dict:
            scene = session.scene
            outputs = {
                session_state: session,
                image: session.render(),
                scene_md: _scene_info(session),
                region_md: NO_REGION,
                chatbot: [],
                status: _info(note) if note else "",
                json_dl: gr.DownloadButton(visible=False, value=None),
                geojson_dl: gr.DownloadButton(visible=False, value=None),
            }
            multi = scene is not None and scene.band_count > 3
            outputs[band_row] = gr.Row(visible=multi)
            if multi:
                choices = _band_choices(session)
                shown = list(scene.shown_bands) * (3 if len(scene.shown_bands) == 1 else 1)
                for dropdown, value in zip((band_r, band_g, band_b), shown):
                    outputs[dropdown] = gr.Dropdown(choices=choices, value=value)
            else:
                for dropdown in (band_r, band_g, band_b):
                    outputs[dropdown] = gr.Dropdown(choices=[], value=None)
            return outputs

        scene_targets = [session_state, image, scene_md, region_md, chatbot, status, json_dl, geojson_dl, band_row, band_r, band_g, band_b]

        def on_upload(path: str | None, session: Session | None) -> dict:
            session = session or Session()
            try:
                if not path:  # removed by the visitor, or cleared after a refused upload: keep the message
                    session.unload()
                    outputs = scene_outputs(session)
                    del outputs[status]
                    return outputs
                try:
                    scene = load_scene(path, Path(path).name, settings.max_image_pixels)
                except SceneError as err:
                    session.unload()  # the upload box is emptied, ready for another file
                    return {**scene_outputs(session), status: _error(str(err)), upload: None}
                session.load(scene)
                return scene_outputs(session, f"Loaded {scene.name}.")
            except Exception as err:  # noqa: BLE001 - shown on the page, logged in full
                logger.exception("upload failed")
                session.unload()
                return {**scene_outputs(session), status: _error(f"internal error: {type(err).__name__}: {err}"), upload: None}

        upload.change(on_upload, [upload, session_state], [*scene_targets, upload], show_progress_on=[image])

        def on_bands(r: int | None, g: int | None, b: int | None, session: Session | None) -> dict:
            session = session or Session()
            if session.scene is None or None in (r, g, b):
                return {status: ""}
            try:
                session.load(session.scene.with_bands((r, g, b)))
            except SceneError as err:
                return {status: _error(str(err))}
            return scene_outputs(session, f"Showing bands {r}, {g}, {b} as RGB; the conversation starts over.")

        for dropdown in (band_r, band_g, band_b):
            dropdown.input(on_bands, [band_r, band_g, band_b, session_state], scene_targets, show_progress="hidden")

        # -- regions --------------------------------------------------------------------------------
        def on_click(session: Session | None, text: str, evt: gr.SelectData) -> dict:
            session = session or Session()
            try:
                x, y = evt.index
                region = session.click(float(x), float(y))
            except RegionError as err:
                return {session_state: session, image: session.render(), status: _error(str(err))}
            if region is None:
                return {session_state: session, image: session.render(), region_md: "First corner set: click the opposite corner.", status: ""}
            text = (text or "").rstrip()
            return {
                session_state: session,
                image: session.render(),
                region_md: f"Region {region} (0-1000 grid), added to the message.",
                message: f"{text} {region}".strip(),
                status: "",
            }

        image.select(on_click, [session_state, message], [session_state, image, region_md, message, status], show_progress="hidden")

        def on_clear_region(session: Session | None) -> dict:
            session = session or Session()
            session.clear_region()
            return {session_state: session, image: session.render(), region_md: NO_REGION}

        clear_region.click(on_clear_region, [session_state], [session_state, image, region_md], show_progress="hidden")

        # -- tasks ---------------------------------------------------------------------------------
        def on_task(name: str) -> dict:
            label, placeholder = MESSAGE_LABELS.get(name, MESSAGE_LABELS["chat"])
            return {classes: gr.Textbox(visible=name == "classify"), message: gr.Textbox(label=label, placeholder=placeholder)}

        task.change(on_task, [task], [classes, message], show_progress="hidden")

        # -- asking ---------------------------------------------------------------------------------
        ask_targets = [session_state, chatbot, image, status, message, json_dl, geojson_dl]

        async def on_send(
            name: str, text: str, class_text: str, longest: float, session: Session | None
        ) -> AsyncIterator[dict]:
            session = session or Session()
            try:
                async for update in _ask(name, text, class_text, int(longest), session):
                    yield update
            except (AskError, TurnError) as err:  # the chat goes back to the answered turns
                yield {status: _error(str(err)), chatbot: _chat_rows(session)}
            except Exception as err:  # noqa: BLE001 - shown on the page, logged in full
                logger.exception("asking failed")
                yield {status: _error(f"internal error: {type(err).__name__}: {err}"), chatbot: _chat_rows(session)}

        async def _ask(name: str, text: str, class_text: str, longest: int, session: Session) -> AsyncIterator[dict]:
            scene, epoch = session.scene, session.epoch  # what is asked about; both may change while the model answers
            if scene is None:
                raise TurnError("upload a scene (or click an example) first")
            service = current_service(get_service)
            turn = make_turn(name, text, class_text, session.region)
            model = describe_model(service, settings.source)
            messages = chat_messages(session.turns, turn, with_history=model["history"])
            rows = _chat_rows(session) + [{"role": "user", "content": _text(turn.shown_question)}]
            yield {chatbot: rows + [{"role": "assistant", "content": "..."}], status: _info("Asking ...")}
            tic = time.perf_counter()
            partial = ""
            completion: Completion | None = None
            async for item in stream_answer(service, messages, [scene.rgb], longest, every=STREAM_EVERY):
                if isinstance(item, Completion):
                    completion = item
                    break
                partial += item
                if session.epoch == epoch:  # else the chat shows another conversation now
                    yield {chatbot: rows + [{"role": "assistant", "content": _text(partial)}]}
            assert completion is not None
            if session.epoch != epoch:  # a new scene, new bands or Clear while the model answered
                what = "scene" if session.scene is not scene else "conversation"
                yield {
                    status: _info(
                        f"The answer to \"{turn.shown_question}\" (asked about {scene.name}) came after the {what} "
                        "changed; it is not part of this conversation."
                    ),
                    chatbot: _chat_rows(session),
                }
                return
            turn.finish(completion.text, scene.size)
            turn.finish_reason = completion.finish_reason
            turn.prompt_tokens, turn.completion_tokens = completion.prompt_tokens, completion.completion_tokens
            turn.seconds = round(time.perf_counter() - tic, 3)
            session.turns.append(turn)
            ended = "cut at the token limit" if completion.finish_reason == "length" else "complete"
            note = f"Answer {len(session.turns)}: {turn.seconds:.2f} s, {completion.completion_tokens} tokens, {ended}."
            outputs = {session_state: session, chatbot: _chat_rows(session), message: ""}
            if turn.boxes_grid:  # an answer without boxes leaves the scene as it is shown: not sent again
                outputs[image] = session.render()
            try:
                answers, geojson = await _downloads(session, model)
                outputs[json_dl] = gr.DownloadButton(value=str(answers), visible=True)
                outputs[geojson_dl] = gr.DownloadButton(value=str(geojson), visible=True) if geojson else gr.DownloadButton(visible=False)
            except ImportError as err:
                note += f" No GeoJSON: {err}"
            outputs[status] = _info(note)
            yield outputs

        async def _downloads(session: Session, model: dict[str, Any]) -> tuple[Path, Path | None]:
            return await asyncio.to_thread(session.write_downloads, settings.downloads, model)

        send.click(
            on_send, [task, message, classes, max_tokens, session_state], ask_targets, show_progress="hidden", concurrency_limit=None
        )
        message.submit(
            on_send, [task, message, classes, max_tokens, session_state], ask_targets, show_progress="hidden", concurrency_limit=None
        )

        def on_clear(session: Session | None) -> dict:
            session = session or Session()
            session.clear_turns()
            return {
                session_state: session,
                chatbot: [],
                image: session.render(),
                status: "",
                json_dl: gr.DownloadButton(visible=False, value=None),
                geojson_dl: gr.DownloadButton(visible=False, value=None),
            }

        clear.click(on_clear, [session_state], [session_state, chatbot, image, status, json_dl, geojson_dl], show_progress="hidden")
    return page


__all__ = ["CSS", "PageSettings", "build_page", "provenance", "warning_html"]
