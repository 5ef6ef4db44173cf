"""Maintenance and inspection operations over a whole repository (PyIceberg-style facades)."""
