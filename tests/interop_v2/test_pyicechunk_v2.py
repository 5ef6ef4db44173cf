"""A spec-2 repository written by pyicechunk, read and extended by icechunk 2.3.0.

The checks are in :mod:`interop_v2_checks`; ``scenario`` (conftest.py) builds the history.
"""

from interop_v2_checks import (  # noqa: F401  (collected here)
    test_the_other_implementation_sees_the_same,
    test_work_on_top_reads_back,
)

KIND = "pyicechunk-v2"
