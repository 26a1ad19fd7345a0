"""An error as the one line a user reads (runner/mistakes/messages.py)."""

from runner.mistakes.messages import first_line, joined_lines, named_first_line


def test_the_first_line_is_the_first_that_says_something():
    assert first_line("\n  database is locked\nwhile writing\n") == "database is locked"
    assert first_line(" \n") == ""


def test_a_named_first_line_leads_with_the_type_and_is_the_type_alone_for_an_empty_message():
    assert named_first_line(OSError("disk I/O error\n  at page 3")) == "OSError: disk I/O error"
    assert named_first_line(KeyError()) == "KeyError"


def test_joined_lines_keep_every_line_with_single_spaces_and_name_the_type_of_an_empty_message():
    assert joined_lines(OSError("[Errno 104]  Connection reset\n  by peer")) == "[Errno 104] Connection reset by peer"
    assert joined_lines(TimeoutError()) == "TimeoutError"
    assert joined_lines("timed out") == "timed out"  # a URLError's reason may be a string
