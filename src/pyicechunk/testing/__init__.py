"""Test helpers that ship with pyicechunk, for its own tests and for third-party backends.

:class:`pyicechunk.testing.storage.StorageTests` is a conformance suite for
:class:`pyicechunk.storage.StorageBackend` implementations; subclass it and provide a
``storage_backend`` fixture. It needs pytest.
"""
