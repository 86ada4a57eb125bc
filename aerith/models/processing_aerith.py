"""AerithProcessor: images of any layout -> both towers' tensors; prompts -> chat text with image tokens."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoProcessor, BatchFeature, ProcessorMixin
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from aerith.errors import ImageReadError
from aerith.imageio import load_rgb
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.tokenizer import CHAT_TOKENS, IMAGE_TOKEN, TASK_TOKENS

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # DINOv3's LVD-1689M weights use ImageNet statistics
IMAGENET_STD = (0.229, 0.224, 0.225)

# Llama-2 chat format. One trained example is ``[INST] <image>\n{prompt} [/INST]`` then
# ``" " + answer + eos`` (aerith.train.collate); the jinja template below renders a single user
# turn as exactly that prompt (format_prompt), and a conversation as Llama-2 does, each finished
# turn as one trained example and the next starting with bos:
#   [INST] <image>\n{q1} [/INST] {a1}</s><s>[INST] {q2} [/INST]
# Within a user turn the images come first, as in training, then the text parts (stripped,
# joined by newlines). A system message becomes Llama-2's <<SYS>> block in the first user
# turn; Aerith's recipes never train with one. The tokenizer adds the first bos itself.
USER_TEMPLATE = CHAT_TOKENS[0] + " " + IMAGE_TOKEN + "\n{prompt} " + CHAT_TOKENS[1]
CHAT_TEMPLATE = (
    "{%- set ns = namespace(system='', turns=0, expect='user') -%}"
    "{%- for m in messages -%}"
    "{%- set turn = namespace(texts=[], images='') -%}"
    "{%- if m['content'] is string -%}{%- set turn.texts = [m['content'] | trim] -%}"
    "{%- else -%}{%- for c in m['content'] -%}"
    "{%- if c['type'] in ['image', 'image_url'] -%}{%- set turn.images = turn.images ~ '" + IMAGE_TOKEN + "\\n' -%}"
    "{%- elif c['type'] == 'text' -%}{%- set turn.texts = turn.texts + [c['text'] | trim] -%}"
    "{%- else -%}{{ raise_exception('unsupported content type ' ~ c['type'] ~ '; use text or image') }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- set text = turn.texts | join('\\n') | trim -%}"
    "{%- if m['role'] == 'system' -%}"
    "{%- if ns.turns > 0 or ns.expect != 'user' or ns.system -%}"
    "{{ raise_exception('a system message may only open the conversation') }}{%- endif -%}"
    "{%- set ns.system = '<<SYS>>\\n' ~ text ~ '\\n<</SYS>>\\n\\n' -%}"
    "{%- elif m['role'] == 'user' -%}"
    "{%- if ns.expect != 'user' -%}{{ raise_exception('user and assistant messages must alternate, starting with user') }}{%- endif -%}"
    "{%- if ns.turns > 0 -%}{{ bos_token }}{%- endif -%}"
    "{{ '[INST] ' ~ ns.system ~ turn.images ~ text ~ ' [/INST]' }}"
    "{%- set ns.system = '' -%}{%- set ns.expect = 'assistant' -%}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{%- if ns.expect != 'assistant' -%}{{ raise_exception('user and assistant messages must alternate, starting with user') }}{%- endif -%}"
    "{%- if turn.images -%}{{ raise_exception('assistant messages cannot hold images') }}{%- endif -%}"
    "{{ ' ' ~ text ~ eos_token }}{%- set ns.turns = ns.turns + 1 -%}{%- set ns.expect = 'user' -%}"
    "{%- else -%}{{ raise_exception('unknown role ' ~ m['role'] ~ '; use system, user or assistant') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
# The template saved with checkpoints written before multi-turn support; it glued answers to
# [/INST] without the trained space, so loading such a checkpoint swaps in CHAT_TEMPLATE.
LEGACY_CHAT_TEMPLATES = (
    "{% for m in messages %}{% if m['role'] == 'user' %}[INST] "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    " [/INST]{% else %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}",
)


def square_image_processor(size: int, mean: Sequence[float], std: Sequence[float]) -> CLIPImageProcessorPil:
    """Resize the whole image to ``size`` x ``size`` and normalise.

    No centre crop: RS boxes are relative to the whole image, and a crop would cut objects off.
    """
    return CLIPImageProcessorPil(
        size={"height": size, "width": size},
        do_center_crop=False,
        do_resize=True,
        do_rescale=True,
        do_normalize=True,
        image_mean=list(mean),
        image_std=list(std),
        do_convert_rgb=True,
    )


def _with_pil_backend(sub_processor: Any) -> Any:
    """A CLIP image processor of another backend (torchvision) as the PIL one with the same settings."""
    if type(sub_processor).__name__ != "CLIPImageProcessor":  # the PIL class is CLIPImageProcessorPil
        return sub_processor
    settings = {k: v for k, v in sub_processor.to_dict().items() if k not in ("image_processor_type", "processor_class")}
    return CLIPImageProcessorPil(**settings)


_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"GIF8", b"BM", b"RIFF")


def _image_bytes(text: str) -> tuple[bytes, str] | None:
    """``(encoded image, what to call it in errors)`` for a ``data:``/``http(s)://`` URL or bare base64
    of an image file; ``None`` for anything else (a path, or a ``file://`` URL: see :func:`_load_image`)."""
    import base64
    import binascii

    head = text[:16].lower()
    if head.startswith("data:"):
        meta, comma, payload = text.partition(",")
        label = f"<data URL, {len(text)} characters>"
        if not comma or not meta.lower().endswith(";base64"):
            raise ImageReadError(label, "not a base64 data URL; expected data:image/png;base64,<data>")
        try:
            return base64.b64decode(payload.strip(), validate=True), label
        except (binascii.Error, ValueError) as err:
            raise ImageReadError(label, f"the base64 payload does not decode ({err})") from err
    if head.startswith(("http://", "https://")):
        from urllib.error import URLError
        from urllib.request import urlopen

        try:
            with urlopen(text, timeout=60) as response:  # noqa: S310 (the scheme is checked above)
                return response.read(), text
        except (URLError, OSError, ValueError) as err:
            raise ImageReadError(text, f"cannot download the image ({err})") from err
    if len(text) > 64 and not os.path.exists(text):  # bare base64, as an image part's "base64" field holds
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
        if raw.startswith(_IMAGE_MAGIC):
            return raw, f"<base64 image, {len(text)} characters>"
    return None


def _load_image(image: Any, bands: Sequence[int] | None) -> Any:
    """:func:`aerith.imageio.load_rgb`, also for the URL and base64 strings of transformers' chat messages."""
    if isinstance(image, str):
        if image[:7].lower() == "file://":
            from urllib.parse import unquote, urlparse

            return load_rgb(unquote(urlparse(image).path), bands)
        found = _image_bytes(image)
        if found is not None:
            import tempfile

            raw, label = found
            with tempfile.TemporaryDirectory() as tmp:  # read as a file, so every format and check of imageio applies
                path = Path(tmp) / "image"
                path.write_bytes(raw)
                try:
                    return load_rgb(path, bands)
                except ImageReadError as err:
                    raise ImageReadError(label, str(err).removeprefix(f"{path}: ")) from None
    return load_rgb(image, bands)


def _flat_images(images: Any) -> list:
    """One image, a list, or a list of lists (one per conversation, as ``apply_chat_template`` passes them)."""
    if images is None:
        return []
    if not isinstance(images, (list, tuple)):
        return [images]
    return [im for item in images for im in (item if isinstance(item, (list, tuple)) else [item])]


class AerithProcessor(ProcessorMixin):
    """Both image processors, the tokenizer and the chat format of AerithVLM.

    Args:
        clip_image_processor: resizes/normalises for tower A (CLIP).
        dino_image_processor: resizes/normalises for tower B (DINOv3).
        tokenizer: a fast tokenizer holding the ``<image>`` token.
        num_image_tokens: how many ``<image>`` tokens one placeholder expands to (the model's ``config.num_image_tokens``).
        bands: default band choice for multi-band images (0-based, stored order), e.g. ``[3, 2, 1]``.
    """

    def __init__(
        self,
        clip_image_processor=None,
        dino_image_processor=None,
        tokenizer=None,
        num_image_tokens: int = 144,
        bands: list[int] | None = None,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.num_image_tokens = int(num_image_tokens)
        self.bands = list(bands) if bands is not None else None
        if chat_template is None or chat_template in LEGACY_CHAT_TEMPLATES:
            chat_template = CHAT_TEMPLATE
        super().__init__(clip_image_processor, dino_image_processor, tokenizer, chat_template=chat_template)
        self.image_token = IMAGE_TOKEN
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.task_tokens = dict(TASK_TOKENS)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # A saved CLIPImageProcessorPil is recorded as "CLIPImageProcessor", which transformers reloads with
        # the torchvision backend where torchvision is installed: its resize differs from PIL's, so a model
        # built from a preset (PIL) and the same model reloaded would see other pixels. Reload with PIL.
        # Naming the PIL class in the config also keeps transformers from warning, on every load where
        # torchvision is missing, that it fell back to PIL "for backward compatibility".
        processor_dict = {
            key: ({**value, "image_processor_type": "CLIPImageProcessorPil"}
                  if isinstance(value, dict) and value.get("image_processor_type") == "CLIPImageProcessor" else value)
            for key, value in (processor_dict or {}).items()
        }
        args = super()._get_arguments_from_pretrained(pretrained_model_name_or_path, processor_dict, **kwargs)
        return [_with_pil_backend(a) for a in args]

    @classmethod
    def _load_tokenizer_from_pretrained(cls, sub_processor_type, pretrained_model_name_or_path, subfolder="", **kwargs):
        # The folder's config.json is an AerithConfig, which AutoTokenizer would try to read as a
        # text model's config; the saved tokenizer is always a fast one, so load it directly.
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)

    # -- text ---------------------------------------------------------------------------------------
    def format_prompt(self, prompt: str) -> str:
        """The chat text for one user turn with one image: ``[INST] <image>\\n{prompt} [/INST]``.

        To tokenise a user's prompt, prefer :meth:`encode_prompt`, which keeps control strings typed
        in it as text.
        """
        if IMAGE_TOKEN in prompt:
            raise ValueError(f"the prompt already holds {IMAGE_TOKEN}; pass the bare instruction: {prompt!r}")
        return USER_TEMPLATE.format(prompt=prompt.strip())

    def expand_image_tokens(self, text: str) -> str:
        return text.replace(IMAGE_TOKEN, IMAGE_TOKEN * self.num_image_tokens)

    def control_strings(self) -> list[str]:
        """Strings the tokenizer maps to control tokens (``</s>``, ``<image>``, ``[INST]``, task tokens ...), longest first."""
        found = set(self.tokenizer.all_special_tokens) | set(self.tokenizer.get_added_vocab())
        found |= {IMAGE_TOKEN, *CHAT_TOKENS, *TASK_TOKENS.values()}
        return sorted((t for t in found if t), key=len, reverse=True)

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of one user turn with its image tokens: ``[INST] <image>*N\n{prompt} [/INST]``.

        The user's text is text: control strings typed in it (``</s>``, ``[INST]``, ``<image>``, a task
        token after the first word) become ordinary tokens, never control tokens, so a prompt cannot
        end a turn, forge one or add image slots. A prompt without them is tokenised exactly as in
        training (the whole formatted string at once).
        """
        prompt = prompt.strip()
        lead = next((t for t in TASK_TOKENS.values() if prompt.startswith(t)), "")
        body = prompt[len(lead) :]
        controls = [c for c in self.control_strings() if c in body]
        if not controls:
            return self.tokenizer(self.expand_image_tokens(USER_TEMPLATE.format(prompt=prompt)))["input_ids"]
        head, tail = USER_TEMPLATE.split("{prompt}")
        ids = self.tokenizer(self.expand_image_tokens(head + lead))["input_ids"]
        ids += self._encode_as_text(body)
        ids += self.tokenizer(tail, add_special_tokens=False)["input_ids"]
        return ids

    def _encode_as_text(self, text: str) -> list[int]:
        """Encode ``text`` with every control string in it broken into ordinary tokens."""
        import re

        pattern = re.compile("|".join(re.escape(c) for c in self.control_strings()))
        ids: list[int] = []
        pos = 0
        for m in pattern.finditer(text):
            pieces = [text[pos : m.start()], m.group()[:1], m.group()[1:]]
            for piece in pieces:
                if piece:
                    ids += self.tokenizer(piece, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            pos = m.end()
        if text[pos:]:
            ids += self.tokenizer(text[pos:], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return ids

    # -- images -------------------------------------------------------------------------------------
    def load_images(self, images: Sequence[Any], bands: Sequence[int] | None = None) -> list:
        """Paths, PIL images or arrays of any mode -> RGB PIL images (errors name the path).

        Strings may also be what transformers' chat messages hold in an image part's ``url``,
        ``path`` or ``base64`` (``apply_chat_template`` passes them on as they are): a
        ``data:`` URL, a ``file://`` or ``http(s)://`` URL, or bare base64 of an image file.
        """
        bands = bands if bands is not None else self.bands
        return [_load_image(image, bands) for image in images]

    def process_images(self, images: Sequence[Any], bands: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        rgb = self.load_images(images, bands)
        clip = self.clip_image_processor(images=rgb, return_tensors="pt")["pixel_values"]
        dino = self.dino_image_processor(images=rgb, return_tensors="pt")["pixel_values"]
        return {"pixel_values": clip, "dino_pixel_values": dino}

    # -- both ---------------------------------------------------------------------------------------
    def __call__(
        self,
        images: Any = None,
        text: str | Sequence[str] | None = None,
        *,
        prompts: Sequence[str] | None = None,
        bands: Sequence[int] | None = None,
        padding: bool | str = True,
        padding_side: str | None = None,
        return_tensors: str = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Tokenise chat texts holding one ``<image>`` per image and process the images.

        Args:
            images: one image or a list (path, PIL image, numpy array); ``None`` for text only.
            text: chat text(s) as made by :meth:`format_prompt`.
            prompts: instead of ``text``, bare user instructions, one per image, encoded by
                :meth:`encode_prompt` (control strings in them stay text).
            padding_side: ``"left"`` for batched generation, ``"right"`` for training.
        Returns:
            ``input_ids``, ``attention_mask`` and, with images, ``pixel_values`` and ``dino_pixel_values``.
        """
        if prompts is not None:
            if kwargs or padding is not True:  # encode_prompt pads to the longest and truncates nothing
                given = sorted([*kwargs, *(["padding"] if padding is not True else [])])
                raise ValueError(f"prompts= takes no tokenizer options ({', '.join(given)}); use text= for those")
            return self._from_prompts(images, prompts, bands=bands, padding_side=padding_side, return_tensors=return_tensors)
        if text is None:
            raise ValueError("AerithProcessor needs text")
        texts = [text] if isinstance(text, str) else list(text)
        image_list = _flat_images(images)
        n_placeholders = sum(t.count(IMAGE_TOKEN) for t in texts)
        if n_placeholders != len(image_list):
            raise ValueError(f"{len(image_list)} image(s) given for {n_placeholders} {IMAGE_TOKEN} placeholder(s) in the text")
        nested = isinstance(images, (list, tuple)) and any(isinstance(item, (list, tuple)) for item in images)
        if nested:  # one list per conversation: each must match its own text, not only the totals
            per_text = [len(item) if isinstance(item, (list, tuple)) else 1 for item in images]
            wanted = [t.count(IMAGE_TOKEN) for t in texts]
            if per_text != wanted:
                raise ValueError(f"images per text {per_text} do not match the {IMAGE_TOKEN} placeholders per text {wanted}")
        expanded = [self.expand_image_tokens(t) for t in texts]
        tok_kwargs = {"padding": padding, "return_tensors": return_tensors, **kwargs}
        if padding_side is not None:
            tok_kwargs["padding_side"] = padding_side
        data = dict(self.tokenizer(expanded, **tok_kwargs))
        self._check_image_tokens(data["input_ids"], [t.count(IMAGE_TOKEN) for t in texts])
        if image_list:
            data.update(self.process_images(image_list, bands))
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _check_image_tokens(self, input_ids: Any, placeholders: list[int]) -> None:
        """Each row holds ``num_image_tokens`` image tokens per placeholder of its text, else ``ValueError``.

        Truncation (``truncation=True, max_length=...``) can cut some of them off; the row would then
        no longer match its image's features.
        """
        rows = input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids
        if rows and isinstance(rows[0], int):  # one text, no batch dimension (return_tensors=None)
            rows = [rows]
        for i, (row, n) in enumerate(zip(rows, placeholders)):
            found = sum(1 for t in row if t == self.image_token_id)
            if found != n * self.num_image_tokens:
                raise ValueError(
                    f"text {i}: {found} image tokens after tokenisation, expected {n * self.num_image_tokens} "
                    f"({n} {IMAGE_TOKEN} x {self.num_image_tokens}); truncation (max_length) cut them off: "
                    "raise max_length or shorten the text"
                )

    def _from_prompts(self, images: Any, prompts: Sequence[str], *, bands, padding_side, return_tensors) -> BatchFeature:
        image_list = list(images) if isinstance(images, (list, tuple)) else [images]
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)  # one prompt, not one per character
        side = padding_side or self.tokenizer.padding_side
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        if len(image_list) != len(prompts):
            raise ValueError(f"{len(image_list)} image(s) given for {len(prompts)} prompt(s)")
        rows = [self.encode_prompt(p) for p in prompts]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        left = side == "left"
        ids = [([pad] * (width - len(r)) + r) if left else (r + [pad] * (width - len(r))) for r in rows]
        mask = [([0] * (width - len(r)) + [1] * len(r)) if left else ([1] * len(r) + [0] * (width - len(r))) for r in rows]
        data = {"input_ids": ids, "attention_mask": mask, **self.process_images(image_list, bands)}
        return BatchFeature(data=data, tensor_type=return_tensors)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)


# Next to the class, so that AutoProcessor knows it wherever it is imported (see aerith.models.auto).
AutoProcessor.register(AerithConfig, AerithProcessor, exist_ok=True)

__all__ = ["CHAT_TEMPLATE", "AerithProcessor", "square_image_processor"]
