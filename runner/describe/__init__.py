"""`python -m runner.describe`: the architecture report app (runner/training/model_report.py renders it)."""
