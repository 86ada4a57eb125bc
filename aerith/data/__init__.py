"""Datasets as users download them, and the samples they yield."""

from aerith.data.errors import DataError, DatasetNotFoundError, ImageReadError, RecordError, SkippedRecordsWarning
from aerith.data.registry import get_dataset_class, list_datasets, load_dataset
from aerith.data.sample import Sample

__all__ = [
    "DataError",
    "DatasetNotFoundError",
    "ImageReadError",
    "RecordError",
    "Sample",
    "SkippedRecordsWarning",
    "get_dataset_class",
    "list_datasets",
    "load_dataset",
]
