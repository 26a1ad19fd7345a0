"""User mistakes end a command with one line on stderr and exit status 2, never a traceback."""

import contextlib
import sys

from builders import SpecError

USAGE_EXIT_CODE = 2


class UserError(Exception):
    """A mistake in the config or the data that the user can fix; the message says how."""


@contextlib.contextmanager
def reported_as_one_line():
    try:
        yield
    except (SpecError, UserError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_EXIT_CODE)
