"""The history browser: ``pyicechunk serve`` shows a repository in a web browser, read-only.

The page (static HTML, CSS and a little JavaScript in ``static/``, no build step, nothing
fetched from elsewhere) draws the ancestry graph; a click on a snapshot shows its message,
metadata and changes, the tree of groups and arrays at that snapshot with each array's
metadata and chunk statistics, and a plot of a 1-d or 2-d slice of an array. Needs the
``web`` extra (Flask).
"""

from pyicechunk.web.server import create_app, serve

__all__ = ["create_app", "serve"]
