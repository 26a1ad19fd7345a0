"""The classes a model's classifier predicts, and which of them a validation image's label is.

A training run's model predicts its data's classes; weights drawn on model= and data= keep their own
classifier (ImageNet's 1000 classes, say), named by their card, so an image's label is one of them only
where the data's folder or class name is one of the weights' (imagenette's WordNet ids are ImageNet's).
"""

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Classes:
    names: Sequence[str]  # the classifier's classes, in its order
    ids: Sequence[str] = ()  # the same as the data's folders name them (ImageNet's WordNet ids), when they differ

    @classmethod
    def of(cls, count: int, names: Sequence[str] | None, ids: Sequence[str] | None = None) -> "Classes":
        """`count` classes named `names` (class 0, class 1, ... where not known or not `count` of them)."""
        if names is None or len(names) != count:
            return cls([f"class {index}" for index in range(count)])
        return cls(list(names), list(ids or ()))

    def index(self, label: str) -> int | None:
        """The classifier's index of a data label (a class or folder name); None: not among its classes."""
        for known in (self.ids, self.names):
            if label in known:
                return list(known).index(label)
        return None
