"""One built repository per test module and storage: the ``scenario`` fixture.

A test module names its kind of repository in ``KIND`` (see :data:`KINDS`); ``scenario`` is
parametrised over the local filesystem and S3 (the session's moto server, a bucket per module)
and builds the history of :mod:`interop_v2_scenario` once per module and storage, with the
implementation the kind says, migrating it where the kind says so. The icechunk 2.3.0 process
is the worker's one oracle; pyicechunk runs in this process.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from interop_v2_scenario import BUILD, KINDS, MIGRATE, VIEW, Impl, Scenario, write_virtual_sources
from oracle import InProcess, Oracle
from oracle.environment import OracleUnavailable
from oracle.snippets import Namespace

# The checks live in a helper module that the test modules import: rewrite its asserts too.
pytest.register_assert_rewrite("interop_v2_checks")


def _location(
    request: pytest.FixtureRequest, storage: str, name: str
) -> tuple[dict[str, Any], Any, str | None]:
    """A location spec for ``storage``, and the S3 server and bucket when on S3."""
    if storage == "local":
        path = request.getfixturevalue("tmp_path_factory").mktemp(name) / "repo"
        return {"kind": "local", "path": str(path)}, None, None
    server = request.getfixturevalue("s3_server")
    bucket = f"interop-v2-{uuid.uuid4().hex[:16]}"
    server.client().create_bucket(Bucket=bucket)
    spec = {
        "kind": "s3",
        "bucket": bucket,
        "prefix": name,
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
    }
    return spec, server, bucket


@pytest.fixture(scope="module", params=["local", "s3"])
def scenario(request: pytest.FixtureRequest, ic2_process: Oracle) -> Iterator[Scenario]:
    """The module's kind of repository, built on ``local`` or ``s3`` (see the module doc)."""
    kind = KINDS[request.module.KIND]
    storage = request.param
    name = f"{request.module.KIND}-{storage}"
    where, server, bucket = _location(request, storage, name)
    data_dir = request.getfixturevalue("tmp_path_factory").mktemp(f"{name}-data")
    virtual = write_virtual_sources(data_dir, server, bucket)
    params = {"where": where, **virtual.params}
    ours = InProcess()
    try:
        ic2_process.reset()
    except OracleUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    impls: dict[str, Impl] = {"pyicechunk": ours, "icechunk2": ic2_process}

    writer = kind.writer
    if writer == "icechunk1" and storage == "s3":
        writer = "pyicechunk"
    build = dict(params, spec_version=kind.spec_version)
    if writer == "icechunk1":
        namespace = Namespace(importlib.import_module("icechunk"), "icechunk1")
        built = namespace.run(BUILD, build)
        namespace.close()
    else:
        if kind.spec_version is None:
            build["spec_version"] = 1
        built = impls[writer].run(BUILD, **build)

    params["unreachable"] = built["unreachable"]
    made = Scenario(kind, storage, where, params, impls, built)
    if kind.migrator is not None:
        # Data at main's tip only: the views after the migration read the rest.
        made.before = ours.run(VIEW, **params, data_at=[built["main"][-1]])
        assert made.before["spec_version"] == 1
        assert impls[kind.migrator].run(MIGRATE, where=where) == 2
    yield made
    ours.close()
