"""`python -m runner.compare`: a sweep's jobs side by side (comparison.py), found in the store by select.py."""
