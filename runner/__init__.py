"""The Hydra apps (train, describe, ...) and what they need; builds models through `builders`."""

import os

# TensorFlow's C++ start-up chatter (CPU features, `E0000 ... failed call to cuInit` on a machine
# without a GPU) hides the report. Level 3: 2 still lets that cuInit line through. A genuine error
# still raises a Python exception (tf.errors.*) with TensorFlow's message. A user's own level wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
