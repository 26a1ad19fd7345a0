"""The one error a model spec can raise: a user mistake, reported as one line."""


class SpecError(ValueError):
    """A model spec that cannot be built; the message names the config path and what is valid."""
