"""The set-up every app composes: the model part, the data splits and the training part (parts.py),
the distribution strategy that comes first (strategy.py), the memory check before a model takes its
memory (memory_check.py), and a stand-alone model for predict, export and the bench (stand_alone.py).

On training's floor: the training part is made of training's optimizer, loss and freezing, and the
loop runs on a session; no module imports back (tests/test_layout.py checks for cycles).
"""
