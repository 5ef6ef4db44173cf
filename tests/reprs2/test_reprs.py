"""icechunk 2.x's structured reprs (API-2.md §13), compared with icechunk 2.3.0's own output.

Both implementations run the same snippet; ids and times differ between them, so the tests
compare the text with every snapshot id and datetime replaced by a placeholder.
"""

from __future__ import annotations

import re

import pytest
from oracle import Both, InProcess, Oracle

Impl = InProcess | Oracle

SCENARIO = """
repo = icechunk.Repository.create(icechunk.in_memory_storage(), spec_version=2)
session = repo.writable_session("main")
root = zarr.create_group(session.store)
root.create_array("a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
long_message = "a commit message that is longer than ten characters, kept whole " * 3
sid = session.commit(long_message, metadata={"k": 1})
"""


def _normalised(text: str) -> str:
    text = re.sub(r"\brepo\.\d{14}\.", "repo.<N>.", text)  # ops-log backup names
    text = re.sub(r"\b[0-9A-HJKMNP-TV-Z]{20}\b", "<ID>", text)
    return re.sub(r"datetime\.datetime\([^)]*\)\)?", "<TIME>", text)


def _same(both: Both, expression: str) -> str:
    ours, ref = both.run(expression)
    assert ours.error is None and ref.error is None, (ours.error, ref.error)
    assert _normalised(ours.value) == _normalised(ref.value)
    return str(ours.value)


@pytest.fixture
def scenario(both: Both) -> Both:
    both.run(SCENARIO)
    return both


@pytest.mark.parametrize(
    "expression",
    [
        "repr(repo.writable_session('main'))",
        "repr(repo.readonly_session('main'))",
        "str(repo.readonly_session('main'))",
        "repr(session)",  # committed: read-only now
        "repr(repo.writable_session('main').store)",
        "repr(repo.readonly_session('main').store)",
        "repr(repo.lookup_snapshot(sid)).split('metadata:')[0]",
        "str(repo.lookup_snapshot(sid)).split('metadata:')[0]",
        "repr(repo.diff(from_snapshot_id=repo.lookup_snapshot(sid).parent_id, to_branch='main'))",
        "repr(repo.chunk_storage_stats())",
    ],
)
def test_handle_reprs_match_the_reference(scenario: Both, expression: str) -> None:
    _same(scenario, expression)


def test_the_commit_message_is_not_cut_short(scenario: Both) -> None:
    text = _same(scenario, "repr(repo.lookup_snapshot(sid)).split('metadata:')[0]")
    message = "a commit message that is longer than ten characters, kept whole " * 3
    assert f"message: {message}\n" in text


def test_repository_header_and_fields(impl: Impl) -> None:
    impl.run(SCENARIO)
    text = impl.run("repr(repo)")
    assert text == impl.run("str(repo)")
    assert text.startswith("<icechunk.Repository (v2)>\nstorage:")
    assert text.endswith("config: <RepositoryConfig ...>\n")
    impl.run("v1 = icechunk.Repository.create(icechunk.in_memory_storage(), spec_version=1)")
    assert impl.run("repr(v1)").startswith("<icechunk.Repository (v1)>\n")


def test_gc_summary_lists_every_field(both: Both) -> None:
    both.run(SCENARIO)
    both.run("import datetime\nnow = datetime.datetime.now(datetime.timezone.utc)")
    ours, ref = both.run("repr(repo.garbage_collect(now))")
    assert ours.error is None and ref.error is None, (ours.error, ref.error)
    names = [line.split(":")[0] for line in ours.value.splitlines()]
    assert names == [line.split(":")[0] for line in ref.value.splitlines()]
    assert ours.value.startswith("<icechunk.ops.GCSummary>\nbytes_deleted: ")


@pytest.mark.parametrize(
    "config",
    [
        "icechunk.RepositoryConfig()",
        "icechunk.RepositoryConfig(inline_chunk_threshold_bytes=5, "
        "caching=icechunk.CachingConfig(num_chunk_refs=7), max_concurrent_requests=3)",
        "icechunk.CachingConfig(num_snapshot_nodes=3)",
        "icechunk.CompressionConfig(level=5)",
        "icechunk.ManifestConfig()",
        "icechunk.StorageSettings()",
        "icechunk.RepositoryConfig(virtual_chunk_containers={'s3://b/': "
        "icechunk.VirtualChunkContainer('s3://b/', icechunk.s3_store(region='r'))})",
    ],
)
def test_config_repr_and_str_as_the_reference(both: Both, config: str) -> None:
    # repr: the constructor call with every field as set; str: effective defaults marked.
    ours, ref = both.run(f"repr({config}), str({config})")
    assert ours.error is None and ref.error is None, (ours.error, ref.error)
    assert ours.value == ref.value


@pytest.mark.parametrize(
    "expression",
    [
        "repo.readonly_session('main')",
        "repo.writable_session('main').store",
        "repo.lookup_snapshot(sid)",
        "repo.diff(from_snapshot_id=repo.lookup_snapshot(sid).parent_id, to_branch='main')",
        "repo",
        "icechunk.RepositoryConfig(caching=icechunk.CachingConfig(num_chunk_refs=5))",
    ],
)
def test_html_reprs(impl: Impl, expression: str) -> None:
    impl.run(SCENARIO)
    html = impl.run(f"({expression})._repr_html_()")
    assert html.startswith("<style>") and "--ic-font-color" in html
    assert '<div class="icechunk-repr">' in html and html.rstrip().endswith("</div>")
    assert html.count("<div") == html.count("</div>")
    assert html.count("<details>") == html.count("</details>")


def test_html_fields_are_the_text_fields(pyic: InProcess) -> None:
    pyic.run(SCENARIO)
    pyic.run("info = repo.lookup_snapshot(sid)")
    html = pyic.run("info._repr_html_()")
    for line in pyic.run("repr(info)").splitlines()[1:]:
        name, _, value = line.partition(": ")
        assert f">{name}:</span>" in html
        assert value.replace('"', "&quot;").replace("'", "&#x27;") in html
    nested = pyic.run("icechunk.RepositoryConfig()._repr_html_()")
    assert '<summary class="icechunk-field-name">caching</summary>' in nested
    assert "num_chunk_refs:</span>" in nested and "15000000 (default)" in nested
    # Text that looks like markup is escaped.
    pyic.run("s = repo.writable_session('main'); s.commit('<b>bold</b>', allow_empty=True)")
    assert "&lt;b&gt;bold&lt;/b&gt;" in pyic.run(
        "repo.lookup_snapshot(repo.lookup_branch('main'))._repr_html_()"
    )


def test_ops_log_updates(both: Both) -> None:
    both.run(SCENARIO)
    both.run("repo.create_tag('t', sid)\nupdates = list(repo.ops_log())")
    for expression in ("repr(updates[0])", "str(updates[1])", "repr(updates[-1])"):
        _same(both, expression)
    html = both.ours.run("updates[0]._repr_html_()")
    assert html.startswith("<style>") and ">icechunk.ops.Update</div>" in html
