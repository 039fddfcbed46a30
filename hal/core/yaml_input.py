"""Reading a YAML file a user wrote (run and sweep configs): a missing, unreadable or malformed file
is one line saying what is wrong."""

from __future__ import annotations

import os
from typing import Any

import yaml

from hal.core.errors import HalError
from hal.core.paths import path_error, readable_file


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping; a missing or malformed file is a ``HalError``."""
    fix = "pass --config with the path of a readable YAML file"
    p = readable_file(path, "config file", fix)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise path_error("config file", p, exc, fix) from None
    except UnicodeDecodeError as exc:
        raise HalError(f"config file {str(p)!r} is not UTF-8 text (byte {exc.start}): save it as "
                       "UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise HalError(f"config file {str(p)!r} is not valid YAML{where}: fix its syntax") from None
    if not isinstance(data, dict):
        raise HalError(f"config file {str(p)!r} must hold a mapping of keys to values")
    return data
