"""A model's architecture as describe shows it and a training run records it: the report as a terminal
table, Markdown or JSON (tables.py) and as a picture (picture.py, one cell per row in picture_cells.py).

Under the session, which builds the model from its spec, and the apps; over builders, which measure it.
"""
