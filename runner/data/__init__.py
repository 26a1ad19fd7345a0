"""Datasets as tf.data pipelines: splits.py `load(cfg)` gives batches of training and validation images.

A source (digits, imagenette, imagenet, folder, synthetic) lists its examples; augment.py says how
each image is cropped; pipeline.py shuffles, reads and batches uint8 images, which the training
and evaluation steps normalise on the device (`Splits.normalise`).
"""
