"""One run's library: the training loop (loop.py) and its steps, stops, resume points and record;
its set-up, which every app composes, is runner/session."""
