"""MLflow: the store (store.py), one run's lifecycle and records (run.py), its name, tags and
params (labels.py), its figures (plots.py), and which sweep a job belongs to (sweep_parent.py)."""
