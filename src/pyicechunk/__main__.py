"""``python -m pyicechunk``: the same as the ``pyicechunk`` command."""

from __future__ import annotations

import sys

from pyicechunk.cli import main

sys.exit(main())
