"""Repository metadata, status and feature flags on pyicechunk and icechunk 2.3.0: values,
enforcement, errors, spec-1 refusals, and state written by one implementation read by the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from oracle import Both, InProcess, Oracle, raises

CREATE = "repo = icechunk.Repository.create(make_storage(where), spec_version=2)"


@pytest.fixture
def repo(impl: InProcess | Oracle, storage_spec: Callable[..., Any]) -> InProcess | Oracle:
    """``impl`` with a new spec-2 repository on local storage bound to ``repo``."""
    impl.run(CREATE + "\nsid = repo.lookup_branch('main')", where=storage_spec("local"))
    return impl


def test_metadata_set_update_and_read(repo: InProcess | Oracle) -> None:
    assert repo.run("(repo.get_metadata(), repo.metadata)") == ({}, {})
    value = {"a": {"b": [1, None, 2.5]}, "s": "ünï", "t": True}
    repo.run("repo.set_metadata(value)", value=value)
    assert repo.run("repo.get_metadata()") == value
    merged = repo.run("repo.update_metadata({'c': 1, 't': None})")
    assert merged == {**value, "c": 1, "t": None}
    assert repo.run("(repo.metadata, repo.get_metadata())") == (merged, merged)
    repo.run("repo.set_metadata({})")
    assert repo.run("repo.get_metadata()") == {}
    kinds = repo.run("[type(u.kind).__name__ for u in repo.ops_log()][:3]")
    assert kinds == ["MetadataChanged"] * 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("repo.set_metadata([1])", "'list' object is not an instance of 'dict'"),
        ("repo.update_metadata([1])", "'list' object is not an instance of 'dict'"),
        ("repo.set_metadata({1: 2})", "'int' object is not an instance of 'str'"),
        ("repo.set_feature_flag('create_tag', 'yes')", "'str' object is not an instance of 'bool'"),
        ("repo.set_status('online')", "'str' object is not an instance of 'RepoStatus'"),
        (
            "icechunk.RepoStatus(1)",
            "'int' object is not an instance of 'RepoAvailability'",
        ),
        (
            "icechunk.RepoStatus(icechunk.RepoAvailability.online, set_at=dt.datetime(2020, 1, 1))",
            "expected a datetime with non-None tzinfo",
        ),
    ],
)
def test_wrong_argument_types(repo: InProcess | Oracle, call: str, message: str) -> None:
    with raises("TypeError", kind=None, match=message):
        repo.run("import datetime as dt\n" + call)


def test_status_read_only_refuses_changes_until_online(repo: InProcess | Oracle) -> None:
    status = repo.run(
        """
st = repo.get_status()
(repr(st.availability), st.set_at.tzinfo is not None, st.limited_availability_reason,
 repo.status == st, int(icechunk.RepoAvailability.read_only))
"""
    )
    assert status == ("RepoAvailability.online", True, None, True, 1)
    repo.run(
        "repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only,"
        " limited_availability_reason='maint'))"
    )
    assert repo.run(
        "repr(repo.get_status().availability), repo.status.limited_availability_reason"
    ) == (
        "RepoAvailability.read_only",
        "maint",
    )
    with raises(
        "ReadOnlyError",
        kind="read-only-repository",
        match=r"(?m)^the repository status is read-only: Cannot create writable session; "
        r'Repo status is ReadOnly, set at \S+ \S+ UTC, reason: Some\("maint"\)$',
    ):
        repo.run("repo.writable_session('main')")
    for call in (
        "repo.create_tag('t', sid)",
        "repo.create_branch('b', sid)",
        "repo.reset_branch('main', sid)",
        "repo.set_metadata({'a': 1})",
        "repo.update_metadata({'a': 1})",
        "repo.set_feature_flag('create_tag', False)",
        "repo.save_config()",
    ):
        with raises(
            "ReadOnlyError", kind="read-only-repository", match='reason: Some\\("maint"\\)'
        ):
            repo.run(call)
    # Reads, read-only sessions and setting the status again still work.
    assert repo.run("repo.readonly_session('main').snapshot_id == sid, repo.get_metadata()") == (
        True,
        {},
    )
    repo.run(
        "repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only,"
        " limited_availability_reason='again'))"
    )
    repo.run("repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.online))")
    repo.run("repo.create_tag('t', sid); repo.writable_session('main') and None")
    assert repo.run("sorted(repo.list_tags())") == ["t"]


def test_status_set_at_is_kept_and_must_be_utc(repo: InProcess | Oracle) -> None:
    got = repo.run(
        """
import datetime as dt
when = dt.datetime(2020, 1, 1, 0, 0, 0, 500000, tzinfo=dt.timezone.utc)
repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.online, set_at=when))
repo.get_status().set_at
"""
    )
    assert got.isoformat() == "2020-01-01T00:00:00.500000+00:00"
    with raises("ValueError", kind=None, match="expected datetime.timezone.utc"):
        repo.run(
            "icechunk.RepoStatus(icechunk.RepoAvailability.online,"
            " set_at=dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))))"
        )


FLAGS = (
    "sorted((f.id, f.name, f.default_enabled, f.setting, f.enabled) for f in repo.feature_flags())"
)


def test_feature_flags_listed_set_and_enforced(repo: InProcess | Oracle) -> None:
    assert repo.run(FLAGS) == [
        (3, "move_node", True, None, True),
        (4, "create_tag", True, None, True),
        (5, "delete_tag", True, None, True),
    ]
    repo.run("repo.create_tag('keep', sid)")
    repo.run(
        "repo.set_feature_flag('delete_tag', False); repo.set_feature_flag('create_tag', False)"
    )
    with raises(
        "SessionStateError",
        kind="feature-flag-disabled",
        match=r"(?m)^tag delete is disabled by a feature flag \(delete_tag\)$",
    ):
        repo.run("repo.delete_tag('keep')")
    with raises(
        "SessionStateError",
        kind="feature-flag-disabled",
        match=r"(?m)^tag creation is disabled by a feature flag \(create_tag\)$",
    ):
        repo.run("repo.create_tag('new', sid)")
    assert repo.run("sorted(f.name for f in repo.disabled_feature_flags())") == [
        "create_tag",
        "delete_tag",
    ]
    assert repo.run("[f.name for f in repo.enabled_feature_flags()]") == ["move_node"]
    repo.run("repo.set_feature_flag('delete_tag', None); repo.set_feature_flag('create_tag', True)")
    assert repo.run(FLAGS) == [
        (3, "move_node", True, None, True),
        (4, "create_tag", True, True, True),
        (5, "delete_tag", True, None, True),
    ]
    repo.run("repo.delete_tag('keep'); repo.create_tag('new', sid)")
    assert repo.run("sorted(repo.list_tags())") == ["new"]
    # Every call is recorded, even one that changes nothing.
    repo.run("repo.set_feature_flag('create_tag', True)")
    changes = repo.run(
        "[(u.kind.id, u.kind.new_value) for u in repo.ops_log()"
        " if type(u.kind).__name__ == 'FeatureFlagChanged']"
    )
    assert changes == [(4, True), (4, True), (5, None), (4, False), (5, False)]
    for name in ("bogus", "CREATE_TAG"):
        with raises(
            "InvalidInputError",
            kind="invalid-feature-flag",
            match=f"invalid feature flag name: {name}",
        ):
            repo.run("repo.set_feature_flag(name, True)", name=name)


SPEC2_ONLY = [
    "repo.get_metadata()",
    "repo.metadata",
    "repo.set_metadata({})",
    "repo.update_metadata({})",
    "repo.get_status()",
    "repo.status",
    "repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.online))",
    "repo.feature_flags()",
    "repo.enabled_feature_flags()",
    "repo.disabled_feature_flags()",
    "repo.set_feature_flag('create_tag', None)",
    "repo.set_feature_flag('bogus', None)",
    "repo.inspect_repo_info()",
]


def test_spec1_repositories_refuse_every_spec2_call(impl: InProcess | Oracle) -> None:
    impl.run("repo = icechunk.Repository.create(make_storage({'kind': 'memory'}), spec_version=1)")
    for call in SPEC2_ONLY:
        with raises(
            "FormatError",
            kind="unsupported-spec-version",
            match="^repository version error, this operation requires a repository that is at "
            "least version 2.0, please upgrade your on-disk format before executing this "
            "operation",
        ):
            impl.run(call)
    with raises("TypeError", kind=None):  # argument types are checked first
        impl.run("repo.set_metadata([1])")


STATE = """
(repo.get_metadata(), {f.name: f.setting for f in repo.feature_flags()},
 (repr(repo.get_status().availability), repo.get_status().set_at,
  repo.get_status().limited_availability_reason),
 [(type(u.kind).__name__, u.updated_at, u.backup_path) for u in repo.ops_log()])
"""


@pytest.mark.parametrize("writer", ["pyicechunk", "icechunk2"])
def test_state_written_by_one_reads_the_same_in_the_other(
    both: Both, storage_spec: Callable[..., Any], writer: str
) -> None:
    write, read = (both.ours, both.reference)
    if writer == "icechunk2":
        write, read = read, write
    where = storage_spec("local")
    written = write.run(
        CREATE
        + """
repo.set_metadata({"project": {"name": "x", "tags": ["a", "b"]}, "n": 3})
repo.update_metadata({"n": 4.5})
repo.set_feature_flag("create_tag", False)
repo.set_feature_flag("move_node", True)
repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.read_only,
                                    limited_availability_reason="moving"))
"""
        + STATE,
        where=where,
    )
    seen = read.run("repo = icechunk.Repository.open(make_storage(where))\n" + STATE, where=where)
    assert seen == written
    metadata, flags, status, log = seen
    assert metadata == {"project": {"name": "x", "tags": ["a", "b"]}, "n": 4.5}
    assert flags == {"create_tag": False, "move_node": True, "delete_tag": None}
    assert status[0::2] == ("RepoAvailability.read_only", "moving")
    assert [entry[0] for entry in log[:3]] == [
        "RepoStatusChanged",
        "FeatureFlagChanged",
        "FeatureFlagChanged",
    ]
    # The reader enforces what the writer set; setting the status back lets it write.
    with raises("ReadOnlyError", kind="read-only-repository"):
        read.run("repo.writable_session('main')")
    read.run("repo.set_status(icechunk.RepoStatus(icechunk.RepoAvailability.online))")
    with raises("SessionStateError", kind="feature-flag-disabled"):
        read.run("repo.create_tag('t', repo.lookup_branch('main'))")
    read.run(
        "repo.set_feature_flag('create_tag', None)\n"
        "repo.create_tag('t', repo.lookup_branch('main'))"
    )
    after = write.run("repo = icechunk.Repository.open(make_storage(where))\n" + STATE, where=where)
    assert [entry[0] for entry in after[3][:3]] == [
        "TagCreated",
        "FeatureFlagChanged",
        "RepoStatusChanged",
    ]
    # The older entries are unchanged, but the formerly newest one now names its backup.
    assert [entry[:2] for entry in after[3][3:]] == [entry[:2] for entry in log]
    assert after[3][4:] == log[1:] and log[0][2] is None and after[3][3][2] is not None
