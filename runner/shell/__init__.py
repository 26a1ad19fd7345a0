"""What every command does around its body: the Hydra app itself (app.py `hydra_app`), its --help
(help.py), quiet logging and a quiet TensorFlow (logs.py), the note when a config asks for a GPU the
machine lacks (gpu_notice.py), and the run folder that holds only Hydra's files, removed (run_folder.py).

On the apps' floor: only the commands use it. What it turns into one line lives below, in runner/mistakes.
"""
