"""``python -m pyicechunk``: the same as the ``pyicechunk`` command (alone, it prints help)."""

from __future__ import annotations

import sys

from pyicechunk.cli import main

sys.exit(main())
