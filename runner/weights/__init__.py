"""Published and previous weights: what `model.weights` names and its card (reference.py, card.py, the
published entries in published.py and their table in docs/weights.md, made by table.py), downloads (download.py),
reading their files lazily (tensors.py; ours.py for files this project saved), the tables that say
where each source tensor goes in our models (layouts.py), placing them on a built model (convert.py,
load.py), and the stand-alone model a run saves with its card (saved.py).

Conversion is data: each family of sources has one table of rows, not code per model. The package
imports keras, numpy, h5py, safetensors, huggingface_hub, builders and, for runs:/<run_id>,
runner.tracking.artifacts; never the training loop.
"""
