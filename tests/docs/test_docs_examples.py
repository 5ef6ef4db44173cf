"""Every example of the user guide (docs/*.md) and of README.md runs, as written.

Each page runs in a fresh namespace and an empty working directory of its own; the command
line's alias file is kept in that directory too. The storage page talks to the S3 test server
(moto), whose address reaches its examples through the usual ``AWS_*`` environment variables.
See ``doc_blocks`` for how each kind of block is run and checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from doc_blocks import RUN, Block, PageRunner, blocks, problems

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# Written and checked separately (it explains the code rather than teaching it).
NOT_GUIDE = {"architecture.md"}
PAGES = sorted(p for p in DOCS.glob("*.md") if p.name not in NOT_GUIDE)
README = ROOT / "README.md"
# The bucket the storage page's examples use on the S3 test server.
DOCS_BUCKET = "pyicechunk-docs"


def _s3_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    server = request.getfixturevalue("s3_server")
    client = server.client()
    if DOCS_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=DOCS_BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", server.region)


PAGE_SETUP: dict[str, Callable[[pytest.FixtureRequest, pytest.MonkeyPatch], None]] = {
    "storage.md": _s3_environment,
}


@pytest.fixture
def page_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, with the command line's alias file inside it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PYICECHUNK_CLI_CONFIG", str(tmp_path / "cli-config.yaml"))
    monkeypatch.delenv("PYICECHUNK_REPO", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return work


def test_the_guide_has_pages() -> None:
    names = {p.name for p in PAGES}
    assert {"index.md", "getting-started.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_blocks_are_runnable_or_marked(page: Path) -> None:
    found = [problem for block in blocks(page) for problem in problems(block)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(
    page: Path, page_dir: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = PAGE_SETUP.get(page.name)
    if setup is not None:
        setup(request, monkeypatch)
    _run_page(blocks(page))


def test_readme_examples_run(page_dir: Path) -> None:
    # README.md shows install and test commands as bash; its Python examples must run.
    runnable = [b for b in blocks(README) if b.language == "python"]
    assert runnable, "README.md has no Python example"
    _run_page(runnable)


def _run_page(page_blocks: list[Block]) -> None:
    runner = PageRunner()
    for block in page_blocks:
        if block.language in RUN and block.not_run is None:
            runner.run(block)


def test_a_wrong_example_fails(page_dir: Path) -> None:
    # The checks above would pass vacuously if the runner ignored what it ran.
    page = page_dir / "wrong.md"
    page.write_text(
        "```python\nx = 1\n```\n\n"
        "```pycon\n>>> x + 1\n3\n```\n\n"
        "```console\n$ pyicechunk -R nowhere log\n(main) a commit\n```\n\n"
        "```console\n$ pyicechunk info\nnot what it prints\n```\n\n"
        "<!-- not run: an example of a marked block -->\n```bash\nrm -rf /\n```\n\n"
        "```bash\nls\n```\n",
        encoding="utf-8",
    )
    found = blocks(page)
    languages = ["python", "pycon", "console", "console", "bash", "bash"]
    assert [b.language for b in found] == languages
    assert [b.not_run for b in found][4:] == ["an example of a marked block", None]
    assert [bool(problems(b)) for b in found] == [False] * 5 + [True]
    runner = PageRunner()
    runner.run(found[0])
    with pytest.raises(AssertionError, match="doctest failed"):
        runner.run(found[1])
    with pytest.raises(AssertionError, match="exited with 1, not 0"):
        runner.run(found[2])
    with pytest.raises(AssertionError, match="instead of"):
        runner.run(found[3])
