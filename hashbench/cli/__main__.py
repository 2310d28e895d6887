"""``python -m hashbench.cli`` runs the command line, as ``hashbench`` does."""

import sys

from . import main

sys.exit(main())
