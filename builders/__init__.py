"""Model specs (plain mappings) to Keras 3 functional models. Imports keras only."""

# Importing the block families registers them.
from builders import inception, layers, pooling, residual  # noqa: F401
from builders.errors import SpecError
from builders.model import BuiltModel, build, build_model, estimate
from builders.registry import registered

__all__ = ["BuiltModel", "SpecError", "build", "build_model", "estimate", "registered"]
