"""icechunk 2.3.0 as a second oracle, beside pyicechunk, for scenarios written once.

icechunk 2.3.0 needs Python >= 3.12; the tests run on 3.11. :mod:`oracle.environment` builds and
caches a venv with it; :mod:`oracle.server` runs in that venv and executes snippets sent over a
pipe; :mod:`oracle.implementations` drives it, and runs the same snippets with pyicechunk in
process; :mod:`oracle.fixtures` gives tests ``ic2``, ``pyic``, ``impl``, ``both`` and
``storage_spec``. A test writes::

    from oracle import raises

    def test_lookup_of_a_missing_branch(impl, storage_spec):
        impl.run(
            "repo = icechunk.Repository.create(make_storage(where))",
            where=storage_spec("local"),
        )
        assert impl.run("sorted(repo.list_branches())") == ["main"]
        with raises("RefNotFoundError", kind="ref-not-found"):
            impl.run("repo.lookup_branch('nope')")

This package must stay importable without pytest except for :mod:`oracle.fixtures`, and the
modules the server imports (``codec``, ``snippets``) need only the stdlib, numpy and zarr.
"""

from .codec import EnumMember, NotTransferable, equal
from .environment import OracleUnavailable, oracle_python
from .errors import ImplError, OracleCrashed, OracleError, OracleTimeout, raises
from .implementations import Both, InProcess, Oracle, Outcome

__all__ = [
    "Both",
    "EnumMember",
    "ImplError",
    "InProcess",
    "NotTransferable",
    "Oracle",
    "OracleCrashed",
    "OracleError",
    "OracleTimeout",
    "OracleUnavailable",
    "Outcome",
    "equal",
    "oracle_python",
    "raises",
]
