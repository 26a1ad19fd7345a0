"""Logging the commands share."""

import logging


def quiet_libraries() -> None:
    """Hydra logs at INFO; TensorFlow's and absl's INFO lines (one per collective under multi_worker)
    are noise there."""
    for chatty in ("tensorflow", "absl"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
