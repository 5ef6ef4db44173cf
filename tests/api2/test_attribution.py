"""Attribution and user_agent on pyicechunk and icechunk 2.3.0: label validation, the value
Repository.attribution keeps, and the reprs."""

from __future__ import annotations

import pytest
from oracle import InProcess, Oracle, raises


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        ({"client": "x y"}, "ValueError", "must be `name` or `name/version` in token characters"),
        ({"client": "n/v/w"}, "ValueError", "must be `name` or `name/version`"),
        ({"client": ""}, "ValueError", "must be `name` or `name/version`"),
        ({"client": "a" * 129}, "ValueError", "is longer than 128 bytes"),
        ({"workload": "a;b"}, "ValueError", "`workload` contains the forbidden character ';'"),
        ({"principal": 'a"b'}, "ValueError", "contains the forbidden character '\"'"),
        ({"workload": "é"}, "ValueError", "contains the forbidden character 'é'"),
        ({"client": 1}, "TypeError", "'int' object is not an instance of 'str'"),
    ],
)
def test_labels_are_validated(
    impl: InProcess | Oracle, labels: dict[str, object], error: str, message: str
) -> None:
    with raises(error, kind=None, match=message):
        impl.run("icechunk.Attribution(**labels)", labels=labels)


def test_repositories_keep_their_attribution(impl: InProcess | Oracle) -> None:
    got = impl.run(
        """
labels = icechunk.Attribution(client="app/1.2", workload="nightly", principal="")
repo = icechunk.Repository.create(make_storage({"kind": "memory"}), attribution=labels,
                                  spec_version=2)
plain = icechunk.Repository.create(make_storage({"kind": "memory"}), spec_version=2)
a = repo.attribution
(a.client, a.workload, a.principal, repr(a), a == labels,
 (plain.attribution.client, plain.attribution.workload), repr(plain.attribution),
 repo.reopen().attribution == labels, isinstance(icechunk.user_agent(), str))
"""
    )
    assert got == (
        "app/1.2",
        "nightly",
        "",
        'icechunk.Attribution(\n    client="app/1.2",\n    workload="nightly",\n'
        '    principal="",\n)',
        True,
        (None, None),
        "icechunk.Attribution(\n    client=None,\n    workload=None,\n    principal=None,\n)",
        True,
        True,
    )
    with raises("TypeError", kind=None):
        impl.run("icechunk.Attribution('positional')")
