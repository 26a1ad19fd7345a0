"""Published and previous weights: reading their files (tensors.py), the tables that say where each
source tensor goes in our models (layouts.py), and placing them on a built model (convert.py).

Conversion is data: each family of sources has one table of rows, not code per model. The package
imports keras, numpy, h5py, safetensors and builders; never the training loop or mlflow.
"""
