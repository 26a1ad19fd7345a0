"""Credentials a user may write into a URI (`http://user:token@host`, `postgresql://user:pw@db`) are
never recorded: the params, tags and config.yaml of a run show `***@host` instead."""

import re

# The userinfo part of any scheme://userinfo@host.
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redacted(text: str) -> str:
    return _USERINFO.sub("***@", text)
