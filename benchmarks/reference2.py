"""Where the benchmarks find icechunk 2.3.0: the Python of the test suite's cached oracle venv.

icechunk 2.3.0 needs Python >= 3.12, so its measurements run ``cases.py`` under another
interpreter than the harness::

    from reference2 import icechunk2_python
    cmd = [icechunk2_python(), str(CASES_SCRIPT), "icechunk", case, str(directory)]

In that interpreter ``import icechunk`` is icechunk 2.3.0 (with zarr and numpy, nothing else).
The first call builds the venv (about ten seconds, see tests/oracle/environment.py), later
calls return at once.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_ENVIRONMENT = Path(__file__).resolve().parents[1] / "tests" / "oracle" / "environment.py"


def icechunk2_python() -> str:
    """The path of a Python that has icechunk 2.3.0, building its venv on first use.

    Raises
    ------
    RuntimeError
        (``OracleUnavailable``) No Python >= 3.12 was found or the venv could not be built; the
        message says how to get one.
    """
    spec = importlib.util.spec_from_file_location("_oracle_environment", _ENVIRONMENT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    python: str = module.oracle_python()
    return python
