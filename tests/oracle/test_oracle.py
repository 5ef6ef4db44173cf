"""The icechunk 2.3.0 oracle and the in-process side: environment, protocol, errors, interop."""

from __future__ import annotations

import datetime
import enum
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oracle import (
    Both,
    EnumMember,
    ImplError,
    InProcess,
    NotTransferable,
    Oracle,
    OracleCrashed,
    OracleTimeout,
    OracleUnavailable,
    equal,
    raises,
)
from oracle import environment as env

TESTS = Path(__file__).resolve().parents[1]

# A scenario both implementations run: a spec-1 repository is what both can read today.
WRITE_SPEC1 = """
create = {"spec_version": 1} if IMPL == "icechunk2" else {}
repo = icechunk.Repository.create(make_storage(where), **create)
session = repo.writable_session("main")
root = zarr.create_group(session.store, attributes={"by": IMPL})
arr = root.create_array("grp/a", shape=data.shape, chunks=(3, 2), dtype=data.dtype)
arr[:] = data
first = session.commit("first", metadata={"step": 1})
repo.create_tag("v1", first)
session = repo.writable_session("main")
zarr.open_array(session.store, path="grp/a", mode="r+")[0, :] = -1
second = session.commit("second")
(first, second)
"""

READ = """
repo = icechunk.Repository.open(make_storage(where))
tip = zarr.open_array(repo.readonly_session("main").store, path="grp/a", mode="r")[:]
tagged = zarr.open_array(repo.readonly_session(tag="v1").store, path="grp/a", mode="r")[:]
history = [(s.id, s.message, s.metadata) for s in repo.ancestry(branch="main")]
attrs = dict(zarr.open_group(repo.readonly_session("main").store, mode="r").attrs)
{"tip": tip, "tagged": tagged, "history": history, "tags": repo.list_tags(), "attrs": attrs}
"""


def test_the_oracle_is_icechunk_2_3_0(ic2: Oracle) -> None:
    assert ic2.run("icechunk.__version__") == env.ICECHUNK_VERSION == "2.3.0"
    python = tuple(int(p) for p in ic2.versions["python"].split("."))
    assert python >= (3, 12)
    assert f"zarr=={ic2.versions['zarr']}" in env.PINS
    assert f"numpy=={ic2.versions['numpy']}" in env.PINS
    assert ic2.run("IMPL") == "icechunk2"


def test_create_commit_read_round_trip_in_the_oracle(ic2: Oracle, tmp_path: Path) -> None:
    data = np.arange(35, dtype="<f8").reshape(5, 7)
    written = ic2.run(
        """
        repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
        session = repo.writable_session("main")
        arr = zarr.create_array(session.store, name="x", shape=data.shape, chunks=(2, 3),
                                dtype=data.dtype)
        arr[:] = data
        sid = session.commit("one", metadata={"n": 1})
        sid
        """,
        path=tmp_path / "repo",
        data=data,
    )
    # A new namespace and a new Repository object: everything comes from the files.
    ic2.reset()
    read = ic2.run(
        """
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
        arr = zarr.open_array(repo.readonly_session("main").store, path="x", mode="r")
        info = next(iter(repo.ancestry(branch="main")))
        (arr[:], info.id, info.message, info.metadata, int(repo.spec_version))
        """,
        path=tmp_path / "repo",
    )
    assert equal(read, (data, written, "one", {"n": 1}, 2))
    assert (tmp_path / "repo" / "repo").is_file()  # the spec-2 repository object, on our path


def test_a_scenario_runs_unchanged_on_either_implementation(
    impl: InProcess | Oracle, storage_spec: Callable[..., dict[str, Any]]
) -> None:
    data = np.arange(12, dtype="i4").reshape(4, 3)
    where = storage_spec("local")
    first, second = impl.run(WRITE_SPEC1, where=where, data=data)
    impl.reset()
    seen = impl.run(READ, where=where)
    data[0, :] = -1
    np.testing.assert_array_equal(seen["tip"], data)
    assert [h[:2] for h in seen["history"][:2]] == [(second, "second"), (first, "first")]
    assert seen["history"][1][2] == {"step": 1}
    assert seen["tags"] == {"v1"}
    assert seen["attrs"] == {"by": impl.name}


@pytest.mark.parametrize("kind", ["local", "s3"])
@pytest.mark.parametrize("writer", ["pyicechunk", "icechunk2"])
def test_spec1_interop_smoke(
    both: Both, storage_spec: Callable[..., dict[str, Any]], kind: str, writer: str
) -> None:
    """A spec-1 repository written by one implementation reads the same in the other."""
    write: InProcess | Oracle = both.ours
    read: InProcess | Oracle = both.reference
    if writer == "icechunk2":
        write, read = read, write
    data = np.linspace(0, 1, 24).reshape(6, 4)
    where = storage_spec(kind)
    first, second = write.run(WRITE_SPEC1, where=where, data=data)
    seen = read.run(READ, where=where)
    assert equal(seen, write.run(READ, where=where))  # both see the same, down to the bytes
    np.testing.assert_array_equal(seen["tagged"], data)
    assert [h[0] for h in seen["history"]][:2] == [second, first]
    assert seen["attrs"] == {"by": write.name}
    # The reader commits on top; the writer sees it.
    read.run(
        """
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="grp/a", mode="r+")[1, :] = 7
        third = session.commit("third by the reader")
        """
    )
    again = write.run(READ, where=where)
    assert again["history"][0][1] == "third by the reader"
    assert again["history"][1][0] == second
    assert (again["tip"][1, :] == 7).all()


def test_reference_errors_keep_class_bases_kind_and_report(ic2: Oracle) -> None:
    ic2.run("repo = icechunk.Repository.create(make_storage({'kind': 'memory'}))")
    with raises("RefNotFoundError", kind="ref-not-found", match="ref not found `nope`") as caught:
        ic2.run("repo.lookup_branch('nope')")
    err = caught.value
    assert isinstance(err, ImplError)
    assert err.impl == "icechunk2" and err.module == "icechunk"
    assert err.mro[:3] == ("RefNotFoundError", "NotFoundError", "IcechunkError")
    assert err.isa("KeyError") and not err.isa("ValueError")
    assert err.first_line == "ref not found `nope`"
    assert err.notes and err.notes[0].startswith("  x ref not found `nope`")
    assert "lookup_branch('nope')" in err.remote_traceback  # the snippet's own line
    # by base class, as isinstance would
    with raises("NotFoundError", kind="ref-not-found"):
        ic2.run("repo.lookup_tag('nope')")
    # each check can fail
    with pytest.raises(AssertionError, match="expected kind 'branch-not-found'"):
        with raises("RefNotFoundError", kind="branch-not-found"):
            ic2.run("repo.lookup_branch('nope')")
    with pytest.raises(AssertionError, match="expected ConflictError"):
        with raises("ConflictError"):
            ic2.run("repo.lookup_branch('nope')")
    with pytest.raises(AssertionError, match="the snippet returned"):
        with raises("RefNotFoundError"):
            ic2.run("repo.lookup_branch('main')")


def test_in_process_errors_have_the_same_shape(pyic: InProcess) -> None:
    import pyicechunk

    pyic.run("repo = icechunk.Repository.create(make_storage({'kind': 'memory'}))")
    with raises("IcechunkError", match="ref not found `nope`") as caught:
        pyic.run("repo.lookup_branch('nope')")
    err = caught.value
    assert err is not None and err.impl == "pyicechunk"
    assert isinstance(err.__cause__, pyicechunk.IcechunkError)  # the real one, for debugging
    assert err.mro[-2:] == ("BaseException", "object")


def test_both_compares_values_and_errors(both: Both) -> None:
    assert both.same("sorted({'b', 'a'}) + [x]", x=np.float32(1.5)) == ["a", "b", np.float32(1.5)]
    with raises("KeyError", kind=None):
        both.same("{}['missing']", messages=True)
    with pytest.raises(AssertionError, match="results differ"):
        both.same("IMPL")
    with pytest.raises(AssertionError, match="only one raised"):
        both.same("1 / 0 if IMPL == 'pyicechunk' else 1")
    ours, ref = both.run("workdir.name")
    assert (ours.value, ref.value) == ("pyicechunk", "icechunk2")  # each its own directory


class Colour(enum.Enum):
    RED = "r"


VALUES: list[Any] = [
    None,
    True,
    -(2**70),
    float("nan"),
    float("-inf"),
    -0.0,
    "ünïcode\n",
    [1, [2.5, None]],
    {"a": {"b": [1]}, "$t": "not a tag"},
    {1: "x", (2, "y"): frozenset({3})},
    (1, (2,), ()),
    {"s", "t"},
    b"\x00\xff",
    bytearray(b"ba"),
    np.arange(6, dtype=">i2").reshape(2, 3),
    np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.arange(10, dtype="u1")[::3],
    np.array(3.5, dtype="f4"),
    np.array([True, False]),
    np.array(["2020-01-01T00:00"], dtype="datetime64[ns]"),
    np.zeros(2, dtype=[("x", "<i4"), ("y", [("z", "f2")])]),
    np.array(["a", "ab"], dtype="U3"),
    np.array(["var", "width"], dtype=np.dtypes.StringDType()),
    np.array([1, "two", None], dtype=object),
    np.float64(0.1),
    np.int8(-3),
    np.bool_(True),
    datetime.datetime(
        2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    ),
    datetime.datetime(2026, 1, 2),
    datetime.date(2026, 1, 2),
    datetime.time(1, 2, 3),
    datetime.timedelta(days=-1, microseconds=5),
    Path("/some/where"),
]


@pytest.mark.parametrize("side", ["pyicechunk", "icechunk2"])
def test_values_cross_faithfully(request: pytest.FixtureRequest, side: str) -> None:
    impl = request.getfixturevalue({"pyicechunk": "pyic", "icechunk2": "ic2"}[side])
    back = impl.run("values", values=VALUES)
    for sent, got in zip(VALUES, back, strict=True):
        assert type(got) is type(sent), (sent, got)
        assert equal(got, sent), (sent, got)
    # the other side computes with them as natives
    assert impl.run("values[14].sum(), values[14].dtype.str", values=VALUES) == (15, ">i2")
    assert impl.run("values[-1].name", values=VALUES) == "where"
    # enums arrive as EnumMember, and go back unchanged
    member = impl.run("colour", colour=Colour.RED)
    assert member == EnumMember("Colour", "RED", "r")
    assert impl.run("colour", colour=member) == member
    with pytest.raises(NotTransferable, match=r"snippet's result is a builtins\.object"):
        impl.run("object()")
    assert impl.run("1 + 1") == 2  # still usable


def test_namespace_persists_until_reset(ic2: Oracle, tmp_path: Path) -> None:
    pid = ic2.pid
    ic2.run("counter = 0")
    for _ in range(3):
        ic2.run("counter += 1")
    assert ic2.run("counter") == 3
    assert ic2.run("workdir") == tmp_path / "icechunk2"
    ic2.reset(other=1)
    with raises("NameError"):
        ic2.run("counter")
    assert ic2.run("other") == 1
    assert ic2.pid == pid  # a reset is not a restart


def test_top_level_await(impl: InProcess | Oracle) -> None:
    got = impl.run(
        """
        repo = await icechunk.Repository.create_async(make_storage({"kind": "memory"}))
        await repo.lookup_branch_async("main")
        """
    )
    assert got == impl.run("repo.lookup_branch('main')")


def test_output_from_a_snippet_does_not_break_the_protocol(ic2: Oracle) -> None:
    ic2.run("print('x' * 100_000); import os; os.write(1, b'\\n{\"value\": 5}\\n')")
    assert ic2.run("'still in step'") == "still in step"


def test_a_hung_oracle_times_out_and_restarts(ic2: Oracle) -> None:
    pid = ic2.pid
    started = time.monotonic()
    with pytest.raises(OracleTimeout, match="gave no answer in time"):
        ic2.run("import time\ntime.sleep(60)", timeout=0.5)
    assert time.monotonic() - started < 10
    assert ic2.run("icechunk.__version__") == "2.3.0"
    assert ic2.pid != pid


def test_a_crashed_oracle_is_reported_and_restarts(ic2: Oracle) -> None:
    with pytest.raises(OracleCrashed, match=r"exited \(code 7\)"):
        ic2.run("import os, sys\nprint('last words', file=sys.stderr, flush=True)\nos._exit(7)")
    assert ic2.run("2 * 21") == 42


def test_without_python_312_the_oracle_tests_fail_with_a_hint(tmp_path: Path) -> None:
    """No interpreter: the tests that need icechunk 2.3.0 fail (not skip) and say what to do."""
    run_env = {
        **os.environ,
        env.PYTHON_ENV: str(tmp_path / "missing" / "python3.12"),
        env.CACHE_ENV: str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"{Path(__file__)}::test_the_oracle_is_icechunk_2_3_0",
            f"{Path(__file__)}::test_namespace_persists_until_reset",
        ],
        capture_output=True,
        text=True,
        env=run_env,
        cwd=TESTS.parent,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "2 errors" in out and "skipped" not in out, out
    assert "needs Python >= 3.12" in out and f"{env.PYTHON_ENV}=" in out, out
    assert "does not run" in out, out
    assert not (tmp_path / "cache" / "venv").exists()


def test_the_interpreter_search_honours_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_python = env.ensure_venv()
    monkeypatch.setenv(env.PYTHON_ENV, sys.executable)  # the 3.11 test interpreter
    with pytest.raises(OracleUnavailable, match=r"not a Python >= 3\.12.*Install Python 3\.12"):
        env.find_python312()
    monkeypatch.setenv(env.PYTHON_ENV, str(venv_python))
    assert env.find_python312() == venv_python  # a venv's python is accepted as it is
    monkeypatch.delenv(env.PYTHON_ENV)
    found = env.find_python312()
    done = subprocess.run(
        [found, "-c", "import sys; print(sys.version_info >= (3, 12))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True"


def test_stale_or_broken_venvs_are_not_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp check on a real cache layout (the build itself runs in the slow test)."""
    base = env.ensure_venv().resolve()  # the real interpreter the cached venv runs on
    monkeypatch.delenv(env.PYTHON_ENV, raising=False)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(base)
    stamp = {**env._wanted_stamp(base), "built": 1}
    (tmp_path / "stamp.json").write_text(json.dumps(stamp))
    assert env._is_current(tmp_path)
    pins = env.PINS
    monkeypatch.setattr(env, "PINS", (*pins[:-1], "numpy==1.0"))
    assert not env._is_current(tmp_path)  # a pin changed
    monkeypatch.setattr(env, "PINS", pins)
    (tmp_path / "stamp.json").write_text("{not json")
    assert not env._is_current(tmp_path)  # a build was interrupted while writing it
    (tmp_path / "stamp.json").write_text(json.dumps(stamp))
    python.unlink()
    python.symlink_to(tmp_path / "gone" / "python3.12")
    assert not env._is_current(tmp_path)  # its interpreter was uninstalled


@pytest.mark.slow
def test_concurrent_first_use_builds_once_and_a_broken_venv_is_rebuilt(tmp_path: Path) -> None:
    """Two workers start on an empty cache at once; later the venv loses icechunk."""
    run_env = {**os.environ, env.CACHE_ENV: str(tmp_path)}
    script = "from oracle.environment import ensure_venv; print(ensure_venv())"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=TESTS,
            env=run_env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] == str(tmp_path / "venv" / "bin" / "python")
    assert (tmp_path / "build.log").read_text().count("# build ") == 1
    subprocess.run([outs[0], "-m", "pip", "uninstall", "-y", "-q", "icechunk"], check=True)
    oracle_script = (
        "from oracle import Oracle; o = Oracle(); print(o.run('icechunk.__version__')); o.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", oracle_script],
        cwd=TESTS,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.stdout.strip() == "2.3.0", done.stderr
