"""`python -m runner.bench`: throughput of the input pipeline and the training step (run.py, stages.py)."""
