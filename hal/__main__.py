"""``python -m hal``."""

import sys

from hal.runs.cli import main

sys.exit(main())
