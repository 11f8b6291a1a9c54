"""``python -m mmser.cli``."""

import sys

from mmser.cli import main

sys.exit(main())
