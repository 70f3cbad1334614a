"""``python -m tiergate.cli``: the ``tiergate`` command."""

import sys

from tiergate.cli.main import main

sys.exit(main())
