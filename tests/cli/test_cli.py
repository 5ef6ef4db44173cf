"""Every verb of the ``pyicechunk`` command on repositories built here, local and on S3 (moto).

Verbs run in this process through :func:`pyicechunk.cli.main` (output captured); the entry
point and a closed pipe run as real subprocesses.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pyicechunk
from cli.repos import SPEC_VERSIONS, add_lookalike, build_history, create
from pyicechunk.cli import main
from pyicechunk.cli._maintenance import parse_time
from pyicechunk.cli._output import relative_time
from pyicechunk.graph import ancestry_graph

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(*args) -> (status, stdout, stderr)`` of one command in this process."""

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return invoke


def run_json(run: Run, *args: str) -> Any:
    status, out, err = run(*args, "--json")
    assert status == 0, err
    return json.loads(out)


@pytest.fixture(params=SPEC_VERSIONS, ids=lambda v: f"spec{v}")
def spec(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(params=["local", "s3"])
def where(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: int
) -> tuple[str, dict[str, str]]:
    """``(location, ids)`` of a history built at a local path or in a bucket on moto."""
    if request.param == "local":
        path = tmp_path / "repo"
        return str(path), build_history(pyicechunk.local_filesystem_storage(str(path)), spec)
    return _on_s3(request, monkeypatch, spec)


def _on_s3(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, spec: int
) -> tuple[str, dict[str, str]]:
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    # The command line takes S3 settings and credentials from the usual environment.
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", server.region)
    storage = pyicechunk.s3_storage(
        bucket=bucket,
        prefix="some/repo",
        endpoint_url=server.endpoint_url,
        allow_http=True,
        force_path_style=True,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        region=server.region,
    )
    return f"s3://{bucket}/some/repo", build_history(storage, spec)


@pytest.fixture
def on_s3(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, spec: int
) -> tuple[str, dict[str, str]]:
    """``(location, ids)`` of a history in a bucket on moto."""
    return _on_s3(request, monkeypatch, spec)


@pytest.fixture
def local(tmp_path: Path, spec: int) -> tuple[str, dict[str, str]]:
    path = tmp_path / "repo"
    return str(path), build_history(pyicechunk.local_filesystem_storage(str(path)), spec)


def test_history_verbs(run: Run, where: tuple[str, dict[str, str]]) -> None:
    loc, ids = where
    log = run_json(run, "-R", loc, "log")
    assert [s["id"] for s in log] == [ids["c2"], ids["c1"], ids["root"]]
    assert log[0]["branches"] == ["main"] and log[1]["tags"] == ["v1"]
    assert log[1]["metadata"] == {"author": "cli"} and log[0]["parent_id"] == ids["c1"]
    assert log[0]["short_id"] == ids["c2"][:8] and log[0]["written_at"].endswith("Z")
    assert [s["id"] for s in run_json(run, "log", "dev", "-n", "1", "-R", loc)] == [ids["d1"]]
    assert len(run_json(run, "-R", loc, "log", "--all")) == 4
    status, out, _ = run("-R", loc, "log", "--oneline")
    assert status == 0
    assert out.splitlines()[0] == f"{ids['c2'][:8]} (main) second: edit the line"
    status, out, _ = run("-R", loc, "log")
    assert f"snapshot {ids['c1']} (v1)" in out and "    first: two arrays" in out
    assert "UTC (just now)" in out or "ago)" in out
    assert 'Metadata: {"author": "cli"}' in out
    # --graph is the ancestry graph, without colours when the output is not a terminal
    status, out, _ = run("-R", loc, "log", "--graph")
    repo = pyicechunk.Repository.open(_storage_of(loc))
    assert out == str(ancestry_graph(repo, plain=True))
    graph = run_json(run, "-R", loc, "log", "--graph")
    assert {(s["id"], s["column"]) for s in graph} >= {(ids["d1"], 1), (ids["c2"], 0)}
    status, out, _ = run("-R", loc, "--color", "always", "log", "--graph", "dev")
    assert out == str(ancestry_graph(repo, branch="dev")) and "\x1b[38;2;" in out
    assert run_json(run, "-R", loc, "ancestry", "v1") == run_json(run, "-R", loc, "log", "v1")

    shown = run_json(run, "-R", loc, "show", ids["c1"][:6].lower())  # a short id, any case
    assert shown["id"] == ids["c1"] and shown["tags"] == ["v1"]
    assert shown["changes"]["new_arrays"] == ["/data/line", "/data/plane"]
    assert shown["manifests"] and all(m["num_chunk_refs"] > 0 for m in shown["manifests"])
    assert run_json(run, "-R", loc, "show", ids["root"])["changes"] is None
    status, out, _ = run("-R", loc, "show", "main")
    assert "Changes:" in out and "Chunks updated:" in out and "/data/line:" in out
    assert f"Parent:   {ids['c1']}" in out

    changed = run_json(run, "-R", loc, "diff", "v1", "main")
    assert changed["from"] == ids["c1"] and changed["to"] == ids["c2"]
    assert changed["updated_chunks"] == {"/data/line": [[0]]} and changed["new_arrays"] == []
    assert run_json(run, "-R", loc, "diff", "main~1") == changed  # B is main by default
    status, out, _ = run("-R", loc, "diff", "main", "main")
    assert (status, out.strip()) == (0, "No changes.")
    status, _, err = run("-R", loc, "diff", "main", "dev")
    assert status == 1 and "is not in the history of dev" in err

    table = run_json(run, "-R", loc, "snapshot", "list")
    assert table == log
    status, out, _ = run("-R", loc, "snapshot", "list")
    assert out.split()[:4] == ["Snapshot", "Written", "Refs", "Message"]


def _storage_of(loc: str) -> Any:
    from pyicechunk.cli._app import Options
    from pyicechunk.cli._location import storage_for

    return storage_for(loc, Options(endpoint_url=_env("AWS_ENDPOINT_URL"), region="us-east-1"))


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def test_tree_and_array_verbs(run: Run, where: tuple[str, dict[str, str]]) -> None:
    loc, ids = where
    tree = run_json(run, "-R", loc, "ls")
    assert tree["snapshot_id"] == ids["c2"] and tree["path"] == "/"
    nodes = {n["path"]: n for n in tree["nodes"]}
    assert list(nodes) == ["/", "/data", "/data/line", "/data/plane"]
    assert nodes["/"]["attributes"] == {"title": "cli test"}
    line = nodes["/data/line"]
    assert (line["shape"], line["dtype"], line["chunks"]) == ([50], "float64", [10])
    status, out, _ = run("-R", loc, "ls", "dev")
    assert "line  (50,) float64  chunks (10,)" in out and '"note": "on dev"' in out
    assert [n["path"] for n in run_json(run, "-R", loc, "ls", "v1", "/data/plane")["nodes"]] == [
        "/data/plane"
    ]
    cat = run_json(run, "-R", loc, "cat", "main", "/data/line", "-s", "8:12")
    assert cat["values"] == [-1, -1, 5.0, 5.5] and cat["selection"] == "8:12"
    assert (cat["chunks_total"], cat["chunks_written"]) == (5, 5) and cat["bytes_stored"] > 0
    old = run_json(run, "-R", loc, "cat", "v1", "data/plane")
    assert old["values"] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
        [12, 13, 14, 15],
        [16, 17, 18, 19],
        [20, 21, 22, 23],
    ]
    assert run_json(run, "-R", loc, "cat", "v1", "data/plane", "-s", "...,1")["values"] == [
        1,
        5,
        9,
        13,
        17,
        21,
    ]
    status, out, _ = run("-R", loc, "cat", "main", "data/line")
    assert "chunks written: 5 of 5" in out and "values [0:10]:" in out and "-1." in out
    for args, needle in [
        (("cat", "main", "data"), "is a group, not an array"),
        (("cat", "main", "data/line", "-s", "1:2:3:4"), "bad selection"),
        (("cat", "main", "data/line", "-s", "0,0"), "has 1 dimension"),
        (("ls", "main", "/nope"), "there is no group or array at /nope"),
    ]:
        status, _, err = run("-R", loc, *args)
        assert status == 1 and needle in err and err.count("\n") == 1, err


def test_branch_and_tag_verbs(run: Run, where: tuple[str, dict[str, str]]) -> None:
    loc, ids = where
    branches = run_json(run, "-R", loc, "branch")
    assert [(b["name"], b["snapshot_id"]) for b in branches] == [
        ("main", ids["c2"]),
        ("dev", ids["d1"]),
    ]
    assert run_json(run, "-R", loc, "branch", "list") == branches
    status, out, _ = run("-R", loc, "branch", "create", "feature", "v1")
    assert status == 0 and out.strip() == f"Created branch feature at {ids['c1'][:8]}."
    status, out, _ = run("branch", "reset", "feature", "main", "-R", loc)  # -R after the verb
    assert status == 0 and f"to {ids['c2'][:8]}" in out
    listed = {b["name"]: b["snapshot_id"] for b in run_json(run, "-R", loc, "branch")}
    assert listed["feature"] == ids["c2"]
    assert run("-R", loc, "branch", "delete", "feature")[0] == 0
    assert "feature" not in {b["name"] for b in run_json(run, "-R", loc, "branch")}
    status, out, _ = run("-R", loc, "tag", "create", "before", "main~1")
    assert status == 0 and ids["c1"][:8] in out
    assert [t["name"] for t in run_json(run, "-R", loc, "tag", "list")] == ["before", "v1"]
    assert run("-R", loc, "tag", "delete", "before")[0] == 0
    status, out, _ = run("-R", loc, "tag")
    assert out.split()[:5] == ["Tag", "Snapshot", "Written", "Message", "v1"]
    status, _, err = run("-R", loc, "branch", "create", "dev", "main")
    assert status == 1 and err.startswith("pyicechunk branch create: error: ")


def test_maintenance_verbs(run: Run, local: tuple[str, dict[str, str]], spec: int) -> None:
    loc, ids = local
    stats = run_json(run, "-R", loc, "stats")
    assert (
        stats["total_bytes"]
        == sum(stats[k] for k in ("native_bytes", "inlined_bytes", "virtual_bytes"))
        > 0
    )
    assert run("-R", loc, "branch", "delete", "dev")[0] == 0  # d1 is unreachable now
    dry = run_json(run, "-R", loc, "gc", "--older-than", "0s", "--dry-run")
    assert dry["dry_run"] and dry["deleted"]["snapshots_deleted"] == 1
    status, _, err = run("-R", loc, "gc", "--older-than", "0s")  # stdin is not a terminal
    assert status == 1 and "pass --yes" in err and err.count("\n") == 1
    repo = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(loc))
    assert repo.lookup_snapshot(ids["d1"]).message == "dev: a note"  # nothing deleted
    done = run_json(run, "-R", loc, "gc", "--older-than", "0s", "--yes", "--no-progress")
    assert not done["dry_run"] and done["deleted"]["snapshots_deleted"] == 1
    assert run_json(run, "-R", loc, "gc", "--dry-run")["deleted"]["snapshots_deleted"] == 0
    status, out, _ = run("-R", loc, "gc", "--older-than", "0s")
    assert status == 0 and out.startswith("Nothing to delete")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    # On spec 2 a tag keeps its snapshot listed unless the tag goes with it.
    expired = run_json(
        run, "-R", loc, "expire", "--older-than", later, "--yes", "--delete-expired-tags"
    )
    assert ids["c1"] in expired["expired"]
    assert run_json(run, "-R", loc, "tag") == []
    assert [s["id"] for s in run_json(run, "-R", loc, "log")][-1] == ids["root"]
    if spec == 1:
        status, _, err = run("-R", loc, "ops")
        assert status == 1 and "needs a spec-2 repository" in err
        assert run_json(run, "-R", loc, "upgrade", "--dry-run") == {
            "dry_run": True,
            "spec_version": 1,
        }
    else:
        # Newest first: what this test did, down to the repository's creation.
        ops = run_json(run, "-R", loc, "ops")
        kinds = [entry["kind"] for entry in ops]
        assert kinds[:4] == ["ExpirationRan", "GCRan", "BranchDeleted", "TagCreated"]
        assert kinds[-1] == "RepoInitialized" and kinds.count("NewCommit") == 3
        assert ops[3]["details"] == {"name": "v1"}
        assert [e["kind"] for e in run_json(run, "-R", loc, "ops", "-n", "2")] == kinds[:2]
        status, out, _ = run("-R", loc, "ops")
        assert out.split()[:3] == ["When", "Operation", "Details"] and "name=v1" in out
        status, _, err = run("-R", loc, "upgrade", "--dry-run")
        assert status == 1 and "is spec 2 already" in err and err.count("\n") == 1
    status, _, err = run("-R", loc, "gc", "--older-than", "yesterday")
    assert status == 1 and "bad time 'yesterday'" in err


def test_maintenance_config_and_upgrade_on_s3(
    run: Run, on_s3: tuple[str, dict[str, str]], spec: int
) -> None:
    loc, ids = on_s3
    for args, needle in [
        (("-R", loc + "-missing", "log"), f"there is no Icechunk repository at {loc}-missing"),
        (("-R", loc, "log", "nope"), "unknown ref 'nope'"),
        (("-R", loc, "show", ids["c1"][:4] + "ZZZZ"), "no branch, tag or snapshot reachable"),
    ]:
        status, out, err = run(*args)
        assert status == 1 and out == "" and err.count("\n") == 1 and needle in err, err
    assert run_json(run, "-R", loc, "stats")["total_bytes"] > 0
    assert run("-R", loc, "config", "set", "inline_chunk_threshold_bytes", "1024")[0] == 0
    assert run_json(run, "-R", loc, "config", "show")["inline_chunk_threshold_bytes"] == 1024
    assert run("-R", loc, "branch", "delete", "dev")[0] == 0
    # S3 lists whole seconds: a cut-off far ahead makes every unreachable object old enough.
    cutoff = "2100-01-01"
    dry = run_json(run, "-R", loc, "gc", "--older-than", cutoff, "--dry-run")
    assert dry["deleted"]["snapshots_deleted"] == 1
    done = run_json(run, "-R", loc, "gc", "--older-than", cutoff, "--yes")
    assert done["deleted"]["snapshots_deleted"] == 1 and done["deleted"]["manifests_deleted"] >= 0
    status, _, err = run("-R", loc, "show", ids["d1"])
    assert status == 1 and err.count("\n") == 1
    if spec == 1:
        assert run_json(run, "-R", loc, "upgrade", "--yes") == {
            "dry_run": False,
            "spec_version": 2,
        }
    kinds = [e["kind"] for e in run_json(run, "-R", loc, "ops")]
    assert kinds[0] == ("GCRan" if spec == 2 else "RepoMigrated")
    assert run_json(run, "-R", loc, "inspect", "repo")["branches"] == {"main": ids["c2"]}
    assert [s["id"] for s in run_json(run, "-R", loc, "log")] == [ids["c2"], ids["c1"], ids["root"]]
    graph = run_json(run, "-R", loc, "log", "--graph")
    assert [(s["id"], s["column"]) for s in graph] == [
        (ids["c2"], 0),
        (ids["c1"], 0),
        (ids["root"], 0),
    ]
    expired = run_json(
        run, "-R", loc, "expire", "--older-than", cutoff, "--yes", "--delete-expired-tags"
    )
    assert expired["expired"] == [ids["c1"]]
    assert [s["id"] for s in run_json(run, "-R", loc, "log")] == [ids["c2"], ids["root"]]
    assert run_json(run, "-R", loc, "ops", "-n", "1")[0]["kind"] == "ExpirationRan"


def test_upgrade_a_spec_1_repository(run: Run, tmp_path: Path) -> None:
    loc = str(tmp_path / "repo")
    ids = build_history(pyicechunk.local_filesystem_storage(loc), 1)
    before = run_json(run, "-R", loc, "log", "--all")
    assert run_json(run, "-R", loc, "upgrade", "--dry-run")["spec_version"] == 1
    storage = pyicechunk.local_filesystem_storage(loc)
    assert pyicechunk.Repository.fetch_spec_version(storage) == 1  # a dry run writes nothing
    status, _, err = run("-R", loc, "upgrade")  # not interactive: needs --yes
    assert status == 1 and "pass --yes" in err and err.count("\n") == 1
    status, out, _ = run("-R", loc, "upgrade", "--yes", "--no-progress")
    assert status == 0 and out.strip() == "Upgraded: the repository is spec 2 now."
    assert pyicechunk.Repository.fetch_spec_version(storage) == 2
    assert run_json(run, "-R", loc, "log", "--all") == before
    ops = run_json(run, "-R", loc, "ops")
    assert ops[0]["kind"] == "RepoMigrated"
    assert {e["details"].get("new_snap_id") for e in ops if e["kind"] == "NewCommit"} >= {
        ids["c1"],
        ids["c2"],
        ids["d1"],
    }
    status, out, _ = run("-R", loc, "log", "--graph")
    repo = pyicechunk.Repository.open(storage)
    assert status == 0 and out == str(ancestry_graph(repo, plain=True))
    status, _, err = run("-R", loc, "upgrade", "--yes")
    assert status == 1 and "is spec 2 already" in err


def test_config_verbs_and_aliases(
    run: Run, local: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc, ids = local
    shown = run_json(run, "-R", loc, "config", "show")
    assert "inline_chunk_threshold_bytes" in shown
    assert run("-R", loc, "config", "set", "inline_chunk_threshold_bytes", "1024")[0] == 0
    assert run("-R", loc, "config", "set", "compression.level", "7")[0] == 0
    saved = pyicechunk.Repository.fetch_config(pyicechunk.local_filesystem_storage(loc))
    assert saved is not None and saved.inline_chunk_threshold_bytes == 1024
    assert saved.compression is not None and saved.compression.level == 7
    assert run_json(run, "-R", loc, "config", "show")["inline_chunk_threshold_bytes"] == 1024
    for key, value, needle in [
        ("nope", "1", "unknown configuration key 'nope'"),
        ("inline_chunk_threshold_bytes", "many", "cannot set inline_chunk_threshold_bytes"),
    ]:
        status, _, err = run("-R", loc, "config", "set", key, value)
        assert status == 1 and needle in err and err.count("\n") == 1

    monkeypatch.setenv("PYICECHUNK_CLI_CONFIG", str(tmp_path / "aliases.yaml"))
    assert run("config", "init")[0] == 0
    assert run("config", "init")[0] == 1  # exists already
    assert run("config", "add", "mine", loc, "--region", "eu-west-1")[0] == 0
    assert run_json(run, "config", "list") == {"mine": {"location": loc, "region": "eu-west-1"}}
    monkeypatch.chdir(tmp_path)
    assert run_json(run, "-R", "mine", "log")[0]["id"] == ids["c2"]
    monkeypatch.setenv("PYICECHUNK_REPO", "mine")
    assert run_json(run, "log", "-n", "1")[0]["id"] == ids["c2"]


def test_config_show_with_virtual_chunk_containers(run: Run, tmp_path: Path, spec: int) -> None:
    # A container's store is a serde variant: a YAML tag in config.yaml, a one-key map in JSON.
    from pyicechunk.format.config_serde import config_from_tree
    from pyicechunk.format.config_yaml import config_from_yaml

    stores = {
        "s3://bucket/": ("s3", pyicechunk.s3_store(region="eu-west-1", requester_pays=True)),
        "s3://other/": (
            "s3_compatible",
            pyicechunk.s3_store(endpoint_url="http://127.0.0.1:9", s3_compatible=True),
        ),
        "gs://bucket/": ("gcs", pyicechunk.gcs_store({"service_account_key": "k.json"})),
        "az://container/": ("azure", pyicechunk.ObjectStoreConfig.Azure({"account": "acct"})),
        "https://example.com/data/": (
            "http",
            pyicechunk.http_store({"timeout": "5s"}, headers={"X-Token": "t"}),
        ),
        "file:///srv/chunks/": ("local_file_system", pyicechunk.local_filesystem_store("/srv")),
    }
    config = pyicechunk.RepositoryConfig.default()
    config.inline_chunk_threshold_bytes = 64
    for prefix, (_, store) in stores.items():
        config.set_virtual_chunk_container(pyicechunk.VirtualChunkContainer(prefix, store))
    path = tmp_path / "repo"
    create(pyicechunk.local_filesystem_storage(str(path)), spec).reopen(config=config).save_config()
    saved = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path))).config

    status, out, err = run("-R", str(path), "config", "show")
    assert status == 0, err
    if spec == 1:
        assert out == (path / "config.yaml").read_text()
    assert sorted(re.findall(r"store: !(\w+)", out)) == sorted(k for k, _ in stores.values())
    assert config_from_yaml(out.encode()) == saved

    shown = run_json(run, "-R", str(path), "config", "show")
    containers = shown["virtual_chunk_containers"]
    assert {p: list(c["store"]) for p, c in containers.items()} == {
        p: [kind] for p, (kind, _) in stores.items()
    }
    assert containers["s3://bucket/"]["store"]["s3"]["region"] == "eu-west-1"
    assert containers["https://example.com/data/"]["store"]["http"] == {
        "timeout": "5s",
        "headers": {"X-Token": "t"},
    }
    assert containers["file:///srv/chunks/"]["store"] == {"local_file_system": "/srv"}
    assert shown["inline_chunk_threshold_bytes"] == 64
    assert config_from_tree(shown, "config show --json") == saved


def test_repo_create(run: Run, tmp_path: Path) -> None:
    for spec in (1, 2):
        made = tmp_path / f"spec{spec}"
        status, out, _ = run("repo", "create", str(made), "--spec-version", str(spec))
        assert status == 0 and f"(spec version {spec})" in out
        storage = pyicechunk.local_filesystem_storage(str(made))
        assert pyicechunk.Repository.fetch_spec_version(storage) == spec
    assert run("repo", "create", str(tmp_path / "spec3"), "--spec-version", "3")[0] == 2
    target = tmp_path / "new"
    status, out, _ = run("repo", "create", str(target))  # the library's default version
    assert status == 0 and "Created an empty repository" in out
    repo = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(target)))
    assert repo.list_branches() == {"main"}
    status, _, err = run("repo", "create", str(target))
    assert status == 1 and "cannot create a repository at" in err and err.count("\n") == 1


def test_inspect_and_info(run: Run, local: tuple[str, dict[str, str]], spec: int) -> None:
    loc, ids = local
    described = run_json(run, "-R", loc, "inspect", "v1")
    assert described["id"] == ids["c1"] and described["commit_message"] == "first: two arrays"
    status, out, _ = run("-R", loc, "inspect", "main")
    assert json.loads(out)["id"] == ids["c2"]
    if spec == 1:
        status, _, err = run("-R", loc, "inspect", "repo")
        assert status == 1 and "needs a spec-2 repository" in err
    else:
        repo_object = run_json(run, "-R", loc, "inspect", "repo")
        assert repo_object["spec_version"] == "2.0" and repo_object["tags"] == {"v1": ids["c1"]}
        assert repo_object["branches"] == {"main": ids["c2"], "dev": ids["d1"]}
    log = run_json(run, "-R", loc, "inspect", "--transaction-log", "main")
    assert log["header"]["file_type"] == "transaction-log"
    assert log["header"]["spec_version"] == f"{spec}.0"
    manifest = run_json(run, "-R", loc, "show", "main")["manifests"][0]["id"]
    assert run_json(run, "-R", loc, "inspect", "--manifest", manifest.lower())["id"] == manifest
    versions = run_json(run, "info")
    expected = {"platform", "python", "pyicechunk", "numpy", "zarr", "xarray", "dask"}
    assert expected | {"distributed", "obstore", "icechunk", "ipywidgets"} <= set(versions)
    assert versions["icechunk"] == "1.1.21"  # the reference, when it is installed
    status, out, _ = run("info")
    assert out.splitlines()[0].startswith("platform:  ")


def test_unique_prefixes_and_ambiguity(run: Run, local: tuple[str, dict[str, str]]) -> None:
    loc, ids = local
    repo = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(loc))
    twin = add_lookalike(repo, ids["c1"], "twin")
    assert twin[:6] == ids["c1"][:6] and twin != ids["c1"]
    status, _, err = run("-R", loc, "show", ids["c1"][:6])
    assert status == 1 and err.count("\n") == 1
    assert f"short snapshot id '{ids['c1'][:6]}' is ambiguous" in err
    assert ids["c1"] in err and twin in err
    # Longer prefixes tell them apart, and printed ids grow until they are unique.
    n = next(i for i in range(6, 20) if twin[i] != ids["c1"][i]) + 1
    assert run_json(run, "-R", loc, "show", ids["c1"][:n])["id"] == ids["c1"]
    short = {s["id"]: s["short_id"] for s in run_json(run, "-R", loc, "log", "--all")}
    assert short[twin] == twin[: max(n, 8)] and short[ids["c2"]] == ids["c2"][:8]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("-R", "{missing}", "log"), "there is no Icechunk repository at"),
        (("-R", "{empty}", "log"), "there is no Icechunk repository at"),
        (("-R", "{repo}", "log", "nope"), "unknown ref 'nope'"),
        (("-R", "{repo}", "show", "ZZZZZZZZ"), "unknown ref 'ZZZZZZZZ'"),
        (("-R", "{repo}", "show", "AB"), "too short for a snapshot id prefix"),
        (("-R", "{repo}", "show", "ABCDEFGHJKMNPQRSTVWX"), "not found in this repository"),
        (("-R", "{repo}", "log", "main~9"), "fewer than 9 ancestors"),
        (("-R", "ftp://host/repo", "log"), "unsupported location 'ftp://host/repo'"),
        (("-R", "s3://", "log"), "names no bucket"),
        (("-R", "{repo}", "branch", "delete", "nope"), "branch delete: error:"),
    ],
)
def test_bad_input_is_one_line_and_status_1(
    run: Run, local: tuple[str, dict[str, str]], tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    loc, _ = local
    (tmp_path / "empty").mkdir()
    names = {"missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty"), "repo": loc}
    status, out, err = run(*(a.format(**names) for a in args))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and needle in err and err.startswith("pyicechunk"), err
    assert "Traceback" not in err


def test_usage_help_and_debug(run: Run, local: tuple[str, dict[str, str]]) -> None:
    loc, _ = local
    status, _, err = run("log", "--no-such-option")
    assert status == 2 and "usage: pyicechunk log" in err
    status, _, err = run()
    assert status == 2 and "usage: pyicechunk" in err
    for verb in (
        "log",
        "show",
        "diff",
        "ls",
        "cat",
        "branch",
        "tag",
        "ops",
        "stats",
        "expire",
        "gc",
        "upgrade",
        "config",
        "inspect",
        "info",
        "demo",
        "serve",
        "repo",
        "snapshot",
        "ancestry",
    ):
        assert f"\n  {verb} " in err
    status, out, _ = run("--version")
    assert (status, out.strip()) == (0, f"pyicechunk {pyicechunk.__version__}")
    status, out, _ = run("gc", "--help")
    assert status == 0 and "--progress / --no-progress" in out and "--json" in out
    status, _, err = run("--debug", "-R", loc, "log", "nope")
    assert (
        status == 1
        and "Traceback" in err
        and err.rstrip().endswith(
            "unknown ref 'nope': "
            "it is not a branch, a tag or a snapshot id (list them with `pyicechunk branch`, "
            "`pyicechunk tag` and `pyicechunk log --all`)"
        )
    )


def test_times() -> None:
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert relative_time(now - dt.timedelta(minutes=3), now) == "3 minutes ago"
    assert relative_time(now - dt.timedelta(days=1, hours=2), now) == "1 day ago"
    assert relative_time(now + dt.timedelta(hours=5), now) == "in 5 hours"
    assert relative_time(now, now) == "just now"
    assert parse_time("2d12h", now) == now - dt.timedelta(days=2, hours=12)
    assert parse_time("2026-01-31", now) == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    assert parse_time("2026-01-31T12:00:00+02:00", now).utcoffset() == dt.timedelta(hours=2)


def test_entry_point_and_closed_pipe(local: tuple[str, dict[str, str]]) -> None:
    loc, ids = local
    script = Path(sys.executable).with_name("pyicechunk")
    done = subprocess.run(
        [str(script), "-R", loc, "log", "--oneline"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(ids["c2"][:8])
    # The reader goes away before the command writes: no error, no message.
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyicechunk", "-R", loc, "log", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and err == b""
