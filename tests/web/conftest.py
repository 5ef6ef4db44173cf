"""Headless Chromium for the history browser."""

from _chromium import chromium, page  # noqa: F401
