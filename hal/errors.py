"""The one exception type for bad user input (config, paths, columns, labels, values)."""

from __future__ import annotations


class HalError(Exception):
    """A problem the user can fix. The CLIs print its one-line message and exit with code 2."""


EXIT_USAGE = 2
