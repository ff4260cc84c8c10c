"""``python -m tinygrad_edu.demos NAME|all [--out DIR] [--tiny]``: ``tinygrad-edu demo``."""

import sys

from tinygrad_edu.cli import main

sys.exit(main(["demo", *sys.argv[1:]]))
