"""Starting weights on a built model (`model.weights`).

When the source's classifier does not fit ours (data.num_classes differs from the weights' classes),
everything but the classifier rows (the weights' card names them: the last row, and GoogLeNet's
auxiliary classifiers) is loaded, and those rows start afresh: the new head of fine-tuning. What was
loaded and what was not is the run's weights.txt. The file is read one tensor at a time as it is
assigned (runner/weights/convert.py), so a load holds at most a tensor and its converted form beside
the model, not a copy of the file.
"""

import contextlib
import logging
from collections.abc import Sequence

from builders.rows import BuiltModel
from runner.weights import convert, ours, tensors
from runner.weights.reference import OURS, Source
from runner.weights.tensor_map import Tensors

log = logging.getLogger(__name__)


def load_into(built: BuiltModel, source: Source, classifier: Sequence[str]) -> convert.Loaded:
    """Sets the source's weights on `built` in place (all checked first) and says what it did.
    `classifier`: our rows that predict the classes, left fresh when the source's do not fit them."""
    layout = source.card.layout
    with _opened(built, source) as found:
        fits = convert.head_fits(built.model, found, layout, classifier)
        if not fits:
            log.info("model.weights: the source's classifier does not fit rows %s: they start afresh",
                     ", ".join(classifier))
        head = set() if fits else convert.head_layers(built.model, classifier)
        return convert.assign(built.model, found, layout, head=head)


def _opened(built: BuiltModel, source: Source) -> contextlib.AbstractContextManager[Tensors]:
    """The source's tensors, read when assigned: a file of ours by our layers' names, another as it is."""
    if source.card.layout == OURS:
        return ours.opened(source.path, built.model)
    return tensors.opened(source.path)
