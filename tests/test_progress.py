"""Progress bars: in place on a terminal, one line at the end anywhere else."""

import io
import sys

from runner import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drawn(monkeypatch, output: io.StringIO, target: int | None) -> str:
    monkeypatch.setattr(sys, "stdout", output)
    bar = progress.bar(target, unit_name="image")
    bar.interval = 0  # draw at every update, as a slow pass would
    for done in range(1, 6):
        bar.update(done)
    if target is None:
        progress.finish(bar, 5)
    monkeypatch.undo()
    return output.getvalue()


def test_a_bar_is_one_line_at_the_end_in_a_log_and_redrawn_on_a_terminal(monkeypatch):
    for target in (5, None):  # known length, and one known when the work ends
        logged = drawn(monkeypatch, io.StringIO(), target)
        assert logged.count("\n") == 1 and "\r" not in logged and "\b" not in logged, repr(logged)
        assert logged.startswith("5/5 - ") and "/image" in logged
    shown = drawn(monkeypatch, Terminal(), 5)
    assert shown.count("\r") >= 5 and shown.endswith("\n")
