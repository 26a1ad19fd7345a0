"""The Hydra apps (train, describe, ...) and what they need; builds models through `builders`."""

import os

# TensorFlow's C++ start-up chatter (CPU features, missing CUDA) hides the report; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
