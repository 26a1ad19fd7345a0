"""MLflow: the store (store.py), one run's lifecycle (run.py), its name, tags and params
(labels.py), per-epoch metrics (epochs.py) and figures (plots.py)."""
