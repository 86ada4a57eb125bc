"""RSICap, the RSGPT caption set (RSIEval, its benchmark, ships in the same download)."""

from __future__ import annotations

from aerith.data.datasets.rsieval import RSGPTDataset, RSIEval
from aerith.data.errors import RecordError
from aerith.data.sample import Sample

__all__ = ["RSICap", "RSIEval"]  # RSIEval is re-exported: the dataset registry names it here


class RSICap(RSGPTDataset):
    """RSICap (Hu, Yuan, Wen, Lu and Li, "RSGPT: A Remote Sensing Vision Language Model and Benchmark", arXiv 2023).

    Datasheet:
        Size: 2,585 human-written detailed captions of DOTA image crops (scene,
            then objects: colour, shape, count, position).
        Format: ``dataset/RSICap/captions.json``
            ``{"annotations": [{"image_id": "0" (a string), "filename": "P0378_0001.png",
            "text_input", "text_output"}]}`` with images in ``dataset/RSICap/images/``.
        Splits: none: everything is ``train`` (RSIEval is the evaluation set).
        Quirks tolerated: ``image_id`` is a string (kept as text; a number is read
            as text too).
        Choices: the caption is ``text_output``; ``text_input`` (the instruction
            RSGPT used) is kept in ``meta``. A missing or empty ``image_id``,
            ``filename`` or ``text_output``, or a missing image, is a bad record
            (record = annotation index).
        Samples: ``task="cap"``, ``targets=(text_output,)``; ``meta``: ``image_id``,
            ``filename``, ``text_input`` (``None`` when absent).
        Root: the folder holding ``dataset/``, ``dataset/`` itself, or ``RSICap/``.
    """

    name = "rsicap"
    task = "cap"
    splits = ("train",)
    folder_name = "RSICap"
    annotation_name = "captions.json"

    def _load(self) -> list[Sample]:
        path, images, records = self._records()
        samples = []
        for index, record in enumerate(records):
            try:
                image_id = self._field(record, "image_id", path, index)
                image = self._image(images, record, path, index)
                caption = self._field(record, "text_output", path, index)
            except RecordError as err:
                self.bad.handle(err)
                continue
            instruction = record.get("text_input")
            meta = {"image_id": image_id, "filename": image.name, "text_input": instruction if isinstance(instruction, str) else None}
            samples.append(Sample(image=image, task="cap", targets=(caption,), meta=meta))
        return samples
