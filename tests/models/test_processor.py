import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from typer.testing import CliRunner

from aerith.cli import app
from aerith.data.errors import ImageReadError
from aerith.infer.vlm import AerithVLM
from aerith.models.build import build_processor
from aerith.models.tokenizer import IMAGE_TOKEN
from aerith.models.presets import get_preset
from aerith.models.tokenizer import build_tiny_tokenizer


@pytest.fixture(scope="module")
def processor():
    return build_processor(get_preset("aerith-tiny").make_config(), build_tiny_tokenizer())


def _write_modes(root):
    rng = np.random.default_rng(0)
    paths = {}
    paths["rgb"] = root / "rgb.jpg"
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(paths["rgb"])
    paths["l"] = root / "grey.png"
    Image.fromarray(rng.integers(0, 255, (30, 40), dtype=np.uint8), "L").save(paths["l"])
    paths["rgba"] = root / "rgba.png"
    Image.fromarray(rng.integers(0, 255, (30, 40, 4), dtype=np.uint8), "RGBA").save(paths["rgba"])
    paths["u16"] = root / "u16.tif"
    tifffile.imwrite(paths["u16"], rng.integers(0, 4000, (30, 40, 3), dtype=np.uint16))
    paths["ms"] = root / "s2.tif"
    tifffile.imwrite(paths["ms"], rng.integers(0, 10000, (13, 30, 40), dtype=np.uint16))
    return paths


def test_every_image_mode_goes_through(processor, tmp_path):
    paths = _write_modes(tmp_path)
    images = list(paths.values()) + [Image.open(paths["rgba"]), np.zeros((20, 20), np.uint8)]
    text = [processor.format_prompt("[CAP] Describe this image.")] * len(images)
    out = processor(images=images, text=text)
    assert out["pixel_values"].shape == (len(images), 3, 64, 64)
    assert out["dino_pixel_values"].shape == (len(images), 3, 56, 56)
    assert torch.isfinite(out["pixel_values"]).all()
    n_img_tokens = (out["input_ids"] == processor.image_token_id).sum(1)
    assert (n_img_tokens == processor.num_image_tokens).all()


def test_band_choice_changes_pixels(processor, tmp_path):
    path = tmp_path / "ms.tif"
    arr = np.zeros((13, 16, 16), np.uint16)
    arr[3] = np.linspace(0, 3000, 256).reshape(16, 16)  # only B04 has signal
    tifffile.imwrite(path, arr)
    text = [processor.format_prompt("[CAP] x")]
    red = processor(images=[path], text=text, bands=[3, 2, 1])["pixel_values"]
    other = processor(images=[path], text=text, bands=[0, 1, 2])["pixel_values"]
    assert red[0, 0].std() > 0.1 and other[0, 0].std() < 1e-6
    with pytest.raises(ImageReadError, match="out of range"):
        processor(images=[path], text=text, bands=[20, 1, 2])


def test_bad_images_name_the_path(processor, tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    text = [processor.format_prompt("[CAP] x")]
    with pytest.raises(ImageReadError, match="broken.tif"):
        processor(images=[bad], text=text)
    with pytest.raises(ImageReadError, match="nope.png"):
        processor(images=[tmp_path / "nope.png"], text=text)


def test_image_and_prompt_counts_must_agree(processor, tmp_path):
    img = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match="2 image"):
        processor(images=[img, img], text=[processor.format_prompt("[CAP] x")])
    vlm = AerithVLM.from_preset("aerith-tiny")
    with pytest.raises(ValueError, match="3 image.*2 prompt"):
        vlm.generate([img, img, img], ["[CAP] a", "[CAP] b"])
    one, two = processor.format_prompt("[CAP] x"), processor.format_prompt("[CAP] x") + IMAGE_TOKEN
    with pytest.raises(ValueError, match=r"images per text \[2, 1\] do not match the <image> placeholders per text \[1, 2\]"):
        processor(images=[[img, img], [img]], text=[one, two])  # the totals agree, the conversations do not
    assert processor(images=[[img], [img, img]], text=[one, two])["pixel_values"].shape[0] == 3
    with pytest.raises(ValueError, match="prompts= takes no tokenizer options \\(max_length, truncation\\)"):
        processor(images=[img], prompts=["[CAP] x"], truncation=True, max_length=10)


def test_chat_template_matches_format_prompt(processor):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "[CAP] Describe this image."}]}]
    assert processor.apply_chat_template(messages, tokenize=False) == processor.format_prompt("[CAP] Describe this image.")


def test_predict_command_says_weights_are_random(tmp_path):
    img = tmp_path / "scene.png"
    Image.new("RGB", (32, 32), (30, 120, 40)).save(img)
    result = CliRunner().invoke(app, ["predict", "aerith-tiny", str(img), "[CAP] Describe this image.", "--max-new-tokens", "5"])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output
    missing = CliRunner().invoke(app, ["predict", "aerith-tiny", str(tmp_path / "none.png"), "[CAP] x"])
    assert missing.exit_code == 2 and "none.png" in missing.output


@pytest.mark.parametrize("side", ["right", "left"])
def test_truncation_that_cuts_image_tokens_is_an_error(processor, side):
    # the processor used to return 7 of the 36 image tokens without a word; the model then failed
    # later (or, in a batch, a row's text no longer matched its image)
    image = Image.new("RGB", (9, 13))
    text = processor.format_prompt("[CAP] Describe this image.")
    processor.tokenizer.truncation_side = side
    try:
        with pytest.raises(ValueError, match="text 0: .* image tokens after tokenisation, expected 36"):
            processor(images=[image], text=[text], truncation=True, max_length=10)
        with pytest.raises(ValueError, match="truncation"):
            processor(images=[image], text=text, truncation=True, max_length=10, return_tensors=None)
        # truncation that keeps every image token is allowed
        full = len(processor(images=[image], text=[text])["input_ids"][0])
        kept = processor(images=[image], text=[text], truncation=True, max_length=full - 1)
        assert kept["input_ids"].shape[1] == full - 1
        assert int((kept["input_ids"] == processor.image_token_id).sum()) == processor.num_image_tokens
    finally:
        processor.tokenizer.truncation_side = "right"


def test_a_saved_processor_reloads_with_the_pil_backend_it_was_built_with(processor, tmp_path, monkeypatch):
    """Where torchvision is installed, transformers.CLIPImageProcessor is its torchvision backend: stand one in."""
    import numpy as np
    import transformers
    from PIL import Image
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from aerith.models.processing_aerith import AerithProcessor

    processor.save_pretrained(tmp_path)
    torchvision_like = type("CLIPImageProcessor", (CLIPImageProcessorPil,), {})  # another class, the same name
    monkeypatch.setattr(transformers, "CLIPImageProcessor", torchvision_like)
    again = AerithProcessor.from_pretrained(tmp_path)
    for name in ("clip_image_processor", "dino_image_processor"):
        assert type(getattr(again, name)) is CLIPImageProcessorPil, name
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8))
    a = processor(images=[image], text=["<image>\nhi"], return_tensors="pt")
    b = again(images=[image], text=["<image>\nhi"], return_tensors="pt")
    assert all((a[k] == b[k]).all() for k in ("pixel_values", "dino_pixel_values", "input_ids"))


def test_a_saved_processor_is_reloaded_through_the_pil_class_by_name(processor, tmp_path, monkeypatch):
    """Asking transformers for ``CLIPImageProcessor`` without torchvision logs "falling back to
    CLIPImageProcessorPil ... Install torchvision" on every command that loads a saved model."""
    from aerith.models.processing_aerith import AerithProcessor

    processor.save_pretrained(tmp_path)
    asked = []
    lookup = AerithProcessor.get_possibly_dynamic_module
    monkeypatch.setattr(AerithProcessor, "get_possibly_dynamic_module", staticmethod(lambda name: asked.append(name) or lookup(name)))
    AerithProcessor.from_pretrained(tmp_path)
    assert "CLIPImageProcessorPil" in asked and "CLIPImageProcessor" not in asked, asked


def test_chat_messages_with_image_urls_and_base64_load_as_the_file_does(processor, tmp_path):
    """transformers' image parts carry ``url`` (data, file or http URL) or ``base64``; apply_chat_template
    passes the strings on, and each must give the pixels of the file itself (a 13-band TIFF too)."""
    import base64
    import functools
    import http.server
    import threading

    paths = _write_modes(tmp_path)
    raw = paths["ms"].read_bytes()
    encoded = base64.b64encode(raw).decode("ascii")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    parts = [
        {"type": "image", "url": f"data:image/tiff;base64,{encoded}"},
        {"type": "image_url", "image_url": {"url": f"data:image/tiff;base64,{encoded}"}},  # OpenAI's form
        {"type": "image", "base64": encoded},
        {"type": "image", "url": paths["ms"].as_uri()},
        {"type": "image", "url": f"http://127.0.0.1:{server.server_address[1]}/{paths['ms'].name}"},
    ]
    try:
        expected = processor.process_images([paths["ms"]], bands=[3, 2, 1])["pixel_values"][0]
        for part in parts:
            messages = [{"role": "user", "content": [part, {"type": "text", "text": "[CAP] Describe this image."}]}]
            out = processor.apply_chat_template(
                messages, tokenize=True, return_dict=True, processor_kwargs={"bands": [3, 2, 1]}
            )
            torch.testing.assert_close(out["pixel_values"][0], expected, rtol=0, atol=0)
    finally:
        server.shutdown()
        server.server_close()
    for bad, message in (("data:image/png;base64,@@@", "does not decode"), ("data:image/png,abc", "not a base64 data URL")):
        with pytest.raises(ImageReadError, match=message):
            processor.process_images([bad])
    with pytest.raises(ImageReadError, match="<data URL.*cannot read image"):
        processor.process_images(["data:image/png;base64," + base64.b64encode(b"not an image").decode()])


def test_prompts_takes_one_string_as_one_prompt_and_refuses_a_bad_padding_side(processor):
    img = Image.new("RGB", (8, 8))
    one = processor(images=img, prompts="[CAP] Describe this image.")
    listed = processor(images=[img], prompts=["[CAP] Describe this image."])
    assert one["input_ids"].tolist() == listed["input_ids"].tolist()
    with pytest.raises(ValueError, match="padding_side must be 'left' or 'right', got 'middle'"):
        processor(images=[img, img], prompts=["a", "a longer prompt"], padding_side="middle")
