"""`python -m runner.bench`: throughput of the input pipeline and the training step (measuring.py, stages.py)."""
