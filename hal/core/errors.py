"""How a user hears about a mistake: the one exception type for bad input (config, paths,
columns, labels, values), its exit code, a bounded way to echo a user's value in a message, and an
argparse parser whose usage errors are one line."""

from __future__ import annotations

import argparse
import reprlib
import sys
from typing import Any


class HalError(Exception):
    """A problem the user can fix. The CLIs print its one-line message and exit with code 2."""


EXIT_USAGE = 2
SHOWN_LIMIT = 80  # characters of a user's value echoed in a message
MESSAGE_LIMIT = 300  # characters of an argparse usage error

# reprlib stops at these sizes without building the whole repr: a value nested from YAML aliases
# can stand for billions of items, and its full repr would never finish.
_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 4
_REPR.maxarray = 4
_REPR.maxdict = 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_LIMIT


def shown(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters on one line: how every message echoes a
    value the user gave, so that a huge or nested value cannot make a huge message."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a repr that fails (e.g. an int past Python's 4300-digit limit)
        text = f"<{type(value).__name__}>"
    text = text.replace("\r", "\\r").replace("\n", "\\n")  # reprs of non-str objects may wrap
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (used by every HAL command)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        if len(message) > MESSAGE_LIMIT:  # argparse echoes the whole bad value
            message = message[: MESSAGE_LIMIT - 3] + "..."
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)
