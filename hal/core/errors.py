"""How a user hears about a mistake: the one exception type for bad input (config, paths,
columns, labels, values), its exit code, and an argparse parser whose usage errors are one line."""

from __future__ import annotations

import argparse
import sys


class HalError(Exception):
    """A problem the user can fix. The CLIs print its one-line message and exit with code 2."""


EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (used by every HAL command)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)
