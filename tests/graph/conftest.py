"""Headless Chromium for the SVG checks."""

from _chromium import chromium, page  # noqa: F401
