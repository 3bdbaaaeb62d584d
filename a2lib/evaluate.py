"""Accuracy, per-class accuracy and the confusion matrix of a model on a data set, as pandas objects."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from .data import ImageSet, Loader
from .device import default_device


@dataclass
class Evaluation:
    """What :func:`evaluate` measures.

    Attributes:
        confusion: DataFrame [C, C], rows = true class, columns = predicted class, counts.
    """

    confusion: pd.DataFrame

    @property
    def accuracy(self) -> float:
        """Fraction of all images classified correctly."""
        return accuracy_from_confusion(self.confusion)

    @property
    def per_class(self) -> pd.Series:
        """Accuracy (recall) of each class, indexed by class name."""
        return per_class_from_confusion(self.confusion)

    def per_class_table(self) -> pd.DataFrame:
        """One row per class: images, correct, accuracy; plus an 'overall' row."""
        counts = self.confusion.sum(axis=1)
        correct = pd.Series(self.confusion.values.diagonal(), index=self.confusion.index)
        table = pd.DataFrame({"images": counts, "correct": correct, "accuracy": self.per_class})
        table.loc["overall"] = [counts.sum(), correct.sum(), self.accuracy]
        table[["images", "correct"]] = table[["images", "correct"]].astype(int)
        table.index.name = "class"
        return table

    def __repr__(self) -> str:
        return f"Evaluation(accuracy={self.accuracy:.4f}, classes={len(self.confusion)})"


def accuracy_from_confusion(confusion: pd.DataFrame) -> float:
    total = confusion.values.sum()
    return float(confusion.values.diagonal().sum() / total) if total else float("nan")


def per_class_from_confusion(confusion: pd.DataFrame) -> pd.Series:
    """Correct / total per true class; NaN for a class without images."""
    counts = confusion.sum(axis=1).astype(float)
    correct = pd.Series(confusion.values.diagonal(), index=confusion.index, dtype=float)
    return (correct / counts.where(counts > 0)).rename("accuracy")


def confusion_from_predictions(labels, predictions, classes: list[str]) -> pd.DataFrame:
    """Count matrix [C, C] (rows true, columns predicted) from integer label and prediction arrays."""
    c = len(classes)
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    predictions = torch.as_tensor(predictions, dtype=torch.long).cpu()
    counts = torch.bincount(labels * c + predictions, minlength=c * c).reshape(c, c)
    index = pd.Index(classes, name="true")
    return pd.DataFrame(counts.numpy(), index=index, columns=pd.Index(classes, name="predicted"))


@torch.inference_mode()
def predict(model: nn.Module, data: ImageSet, device=None, batch_size: int = 500, flip_tta: bool = False) -> torch.Tensor:
    """Predicted labels [N] (on the CPU); ``flip_tta`` averages the logits of each image and its mirror."""
    device = torch.device(device) if device is not None else default_device()
    was_training = model.training
    model.eval().to(device)
    predictions = []
    for x, _ in Loader(data, batch_size, device=device):
        logits = model(x)
        if flip_tta:
            logits = logits + model(x.flip(3))
        predictions.append(logits.argmax(1).cpu())
    model.train(was_training)
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


def evaluate(model: nn.Module, data: ImageSet, device=None, batch_size: int = 500, flip_tta: bool = False) -> Evaluation:
    """Evaluate ``model`` on every image of ``data`` (no augmentation)."""
    predictions = predict(model, data, device, batch_size, flip_tta)
    return Evaluation(confusion_from_predictions(data.labels, predictions, data.classes))
