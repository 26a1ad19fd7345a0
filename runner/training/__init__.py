"""One run's library: prepare() sets a run up (session.py); the loop, its steps, stops and resume."""
