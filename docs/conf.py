"""Sphinx configuration of the pyicechunk user guide (Markdown pages read by MyST)."""

from __future__ import annotations

import pyicechunk

project = "pyicechunk"
author = "the pyicechunk authors"
copyright = "the pyicechunk authors; Apache-2.0"
version = release = pyicechunk.__version__

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Anchors for headings down to ###, so pages can link to sections (page.md#section).
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"pyicechunk {release}"
