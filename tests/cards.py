"""Weights cards for tests' own small models (runner/weights/card.py)."""

from runner.data.pipeline import Preprocessing
from runner.weights.card import WeightsCard


def tiny_card(class_names: tuple[str, ...], preprocessing: Preprocessing, architecture: str = "tiny",
              classifier: tuple[str, ...] = ("fc",)) -> WeightsCard:
    return WeightsCard(kind="file", reference="model.keras", describes="a test's model", architecture=architecture,
                       layout="ours", preprocessing=preprocessing, resize_ratio=256 / 224, class_names=class_names,
                       classifier=classifier)
