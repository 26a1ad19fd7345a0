"""`--help` of every command: what it does and an example, then Hydra's list of config groups and the config.

Hydra prints `hydra.help.template` for --help, with $APP_CONFIG_GROUPS and $CONFIG filled in; its default
template names the app `__main__` and says only that Hydra powers it. Each command's text (its module's
docstring, whose first line is the command and what it does, and an example) becomes an option of the group
hydra/help, which the command line selects when it asks for --help: the config files stay the same for every
command, and a run records Hydra's own help settings.
"""

import contextlib
import sys
from collections.abc import Iterator

from hydra._internal import utils as hydra_internals
from hydra.core.config_store import ConfigStore

OPTION = "runner_app"  # hydra/help=runner_app
TEMPLATE = """${hydra.help.header}
== Config groups ==
Choose one option of each group (group=option):

$APP_CONFIG_GROUPS

== Config ==
Every key with its default; override any (key=value), or run several jobs with -m (key=a,b):

$CONFIG
${hydra.help.footer}"""
FOOTER = "Hydra's own options: --hydra-help"


def help_text(about: str, example: str) -> str:
    """The command's docstring with the example after its first line, which says what the command does."""
    summary, _, rest = about.strip().partition("\n")
    return f"{summary}\n\nExample: {example}\n{rest}\n"


@contextlib.contextmanager
def with_app_help(about: str, example: str) -> Iterator[None]:
    """While Hydra reads the command line, one that asks for --help also selects this command's help."""
    argv = sys.argv
    args = hydra_internals.get_args_parser().parse_args(argv[1:])  # Hydra's own reading of it
    if not args.help:
        yield
        return
    node = {"header": _literal(help_text(about, example)), "footer": FOOTER, "template": TEMPLATE}
    ConfigStore.instance().store(group="hydra/help", name=OPTION, node=node)
    # argparse takes the overrides as one run of words: the new one goes right after the last.
    at = len(argv) - argv[::-1].index(args.overrides[-1]) if args.overrides else len(argv)
    sys.argv = [*argv[:at], f"hydra/help={OPTION}", *argv[at:]]
    try:
        yield
    finally:
        sys.argv = argv


def _literal(text: str) -> str:
    """`text` as it is through OmegaConf's interpolation (`${...}`) and the template's $ substitutions."""
    return text.replace("$", "$$").replace("$${", "$\\${")
