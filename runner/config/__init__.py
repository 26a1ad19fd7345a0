"""The config's schema and its bounds: a dataclass for every config group, the one source of defaults
(schema.py, a training recipe's groups in recipes.py), bounds and closed choices checked before anything
is built (bounds.py), and config files whose YAML aliases would expand past a bound (bounded_yaml.py)."""
