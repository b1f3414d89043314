"""``python -m petrecon``: the same as the ``petrecon`` command."""

import sys

from petrecon.cli import main

sys.exit(main())
