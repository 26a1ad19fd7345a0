"""A user's mistake as one line: the error every floor raises (errors.py) and the one-line forms of the
library errors it meets (messages.py), the nearest valid name (suggestions.py), keys no schema holds
(known_keys.py), and Hydra's and YAML's own errors while a config composes (usage_errors.py).

Low in the house, beside the config: data, weights, tracking and training raise and word these
errors; the shell that catches them for every command (runner/shell) sits on the apps' floor.
"""
