"""Accuracy: datasets in their official layouts, confusion-matrix mIoU, prediction export."""
from .datasets import DATASETS, NUM_CLASSES, DatasetError, open_dataset
from .evaluate import EVAL_AT, AccuracyResult, EvalConfig, evaluate

__all__ = ["DATASETS", "EVAL_AT", "NUM_CLASSES", "AccuracyResult", "DatasetError", "EvalConfig",
           "evaluate", "open_dataset"]
