"""`python -m runner.describe`: the architecture report app (runner/architecture/tables.py renders it)."""
