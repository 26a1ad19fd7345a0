"""Zeiler & Fergus (2014) style pictures of a trained run, logged back on it: first-layer filters,
feature maps, the validation images that excite a row's channels most, guided backpropagation.

source.py reads the MLflow store; rows.py maps the config's rows onto the saved model's layers;
render.py draws (figures.py: the grids); guided.py is guided backpropagation; run.py ties them.
"""
