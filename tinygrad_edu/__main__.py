"""``python -m tinygrad_edu train`` is the same as ``tinygrad-edu train``."""

import sys

from tinygrad_edu.cli import main

sys.exit(main())
