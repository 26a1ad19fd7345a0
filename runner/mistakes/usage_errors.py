"""The one line a mistake Hydra finds while composing the config is reported as: a YAML error
naming the file, line and column; Hydra's own message cut to its first line, with a suggestion."""

import dataclasses
import re

import yaml
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

from runner.mistakes.messages import first_line
from runner.mistakes.suggestions import did_you_mean, for_key

UNKNOWN_TAG = re.compile(r"could not determine a constructor for the tag '(?:tag:yaml\.org,2002:)?(.+)'")
# Hydra's words for a mistake inside one config file (it chains the cause only as the context)
IN_FILE = re.compile(r"In '(?P<file>[^']+)': \w+ raised while composing config:?")


def yaml_error_line(error: yaml.MarkedYAMLError) -> str:
    """`<file>:<line>:<column>: <problem>`, the form editors and compilers use (1-based, as they count)."""
    mark = error.problem_mark or error.context_mark
    where = f"{mark.name}:{mark.line + 1}:{mark.column + 1}" if mark else "a config file"
    unknown_tag = UNKNOWN_TAG.match(error.problem or "")
    if unknown_tag:
        # OmegaConf loads YAML with a safe loader: a Python tag is refused, never run.
        return f"{where}: unknown YAML tag !!{unknown_tag.group(1)}; config files hold plain values, remove the tag"
    context = f" ({error.context}, from line {error.context_mark.line + 1})" if error.context_mark else ""
    return f"{where}: {error.problem}{context}"


def hydra_error_line(error: Exception) -> str:
    """Hydra's message to its first line, the OmegaConf reason under it, and what would be valid."""
    if isinstance(error, MissingConfigException) and error.options:
        return _missing_option(error)
    first = first_line(str(error)).rstrip(".")
    if isinstance(error, OverrideParseException):
        return f"{error.override}: {first}"
    cause = error.__cause__ or error.__context__
    if not isinstance(cause, OmegaConfBaseException):
        return first
    in_file = IN_FILE.fullmatch(first)
    if in_file and isinstance(cause, AttributeError | KeyError) and cause.full_key:
        return f"{cause.full_key}: unknown key (in {in_file['file']}.yaml)" + _declared(cause)
    reason = f"{first}: {first_line(cause.msg)}"
    if isinstance(cause, AttributeError | KeyError) and cause.full_key:
        return reason + _declared(cause)
    return reason


def _declared(cause: OmegaConfBaseException) -> str:
    """The closest key the schema declares beside an unknown one, else all of them; "" without a schema."""
    if not dataclasses.is_dataclass(cause.object_type):
        return ""
    return for_key(cause.full_key, [field.name for field in dataclasses.fields(cause.object_type)])


def _missing_option(error: MissingConfigException) -> str:
    group, _, name = error.missing_cfg_file.rpartition("/")
    first = first_line(str(error))
    return f"{first}{did_you_mean(name, error.options, f'{group}=')} (options in {group}: {', '.join(error.options)})"
