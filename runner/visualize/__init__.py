"""Zeiler & Fergus (2014) style pictures of a trained network, logged in MLflow: first-layer filters,
feature maps, the validation images that excite a row's channels most, the gradient, deconvnet and
guided backpropagation of a unit, and the paper's Figure 2 (top patches beside their projections);
and where the network looks for a class: Grad-CAM and Guided Grad-CAM, and the paper's occlusion (Figure 7).

stored_runs.py reads the MLflow store; row_layers.py maps the config's rows onto the saved model's layers;
scan.py scores the images (scores.py: before a saturating activation); render.py draws the grids
(figures.py, filters.py, projections.py, figure2.py, cropped by crops.py); guided.py and
deconvnet.py go back to the pixels; gradcam.py and occlusion.py explain a class (classes.py: the
classifier's classes); visualization.py ties them to a run or to published weights.
"""
