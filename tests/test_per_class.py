"""Per-class figures beside the confusion matrix, against hand counts."""

import numpy as np

from runner.tracking import per_class

NAMES = ["cat", "dog", "fox"]
# cat: 3 images, 2 right, 1 taken for a dog; dog: 2 images, both right; fox: 1 image, taken for a dog.
LABELS = np.array([0, 0, 0, 1, 1, 2])
PREDICTED = np.array([0, 0, 1, 1, 1, 1])


def test_precision_recall_and_f1_per_class():
    table = per_class.table(LABELS, PREDICTED, NAMES)
    assert table["class"] == NAMES and table["images"] == [3, 2, 1]
    assert table["recall"] == [0.6667, 1.0, 0.0]  # recall is the class's accuracy
    assert table["precision"] == [1.0, 0.5, 0.0]  # dog: 2 of its 4 predictions; fox never predicted
    assert table["f1"] == [0.8, 0.6667, 0.0]


def test_the_most_confused_pairs_come_first_and_right_answers_are_not_pairs():
    pairs = per_class.confused_pairs(LABELS, PREDICTED, NAMES)
    assert pairs == {"true": ["cat", "fox"], "predicted": ["dog", "dog"], "images": [1, 1]}
    assert per_class.as_csv(pairs).splitlines() == ["true,predicted,images", "cat,dog,1", "fox,dog,1"]


def test_the_most_confident_mistakes_come_first():
    from runner.training.evaluation import Evaluation

    evaluation = Evaluation({}, labels=LABELS, predicted=PREDICTED,
                            confidence=np.array([0.9, 0.8, 0.6, 0.99, 0.7, 0.95]))
    # Wrong: index 2 (cat taken for a dog, 0.6) and index 5 (fox taken for a dog, 0.95).
    assert evaluation.confident_mistakes(16).tolist() == [5, 2]
    assert evaluation.confident_mistakes(1).tolist() == [5]


def test_the_mistakes_figure_shows_each_image_under_its_title():
    from runner.tracking import plots

    images = np.stack([np.full((28, 14, 1), 10 * index, np.uint8) for index in range(5)])  # portrait: 28 x 14
    figure = plots.mistakes(images, [f"true cat\npredicted dog ({index})" for index in range(5)])
    [axes] = figure.axes
    [picture] = axes.images
    tiles = picture.get_array()
    gap, band = 1, 7  # a fourteenth of the shorter side, a quarter of the height
    assert tiles.shape == (2 * (band + 28 + gap) + gap, 4 * (14 + gap) + gap)  # a 4-wide grid, two rows
    for index, text in enumerate(axes.texts):
        top, left = (index // 4) * (band + 28 + gap) + band, (index % 4) * (14 + gap) + gap
        assert (tiles[top : top + 28, left : left + 14] == 10 * index).all(), "each image in its tile"
        assert text.get_text() == f"true cat\npredicted dog ({index})"
        assert text.get_position() == (left + 7, top - 0.5), "centred over its tile"
    assert len(axes.texts) == 5
    assert (tiles[band + 28 + gap + band :, 14 + 2 * gap :] == 255).all(), "blank past the last image"
