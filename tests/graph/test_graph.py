"""AncestryGraph: the drawing of icechunk 2.3.0, character for character, on the same repository.

icechunk 2.3.0 writes a spec-1 history and draws it; pyicechunk reads the same files and draws
them; every selector, plain and coloured text, and the SVG must match. Snapshot ids come from
the files, so both sides see the same ids.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from oracle import Oracle

import pyicechunk
from pyicechunk.graph import AncestryGraph, ancestry_graph

# Run in icechunk 2.3.0: every way of drawing the repository at ``path``, as strings.
DRAW = """
repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
drawn = {}
for key, selector in selectors:
    drawn[key + " plain"] = str(repo.ancestry_graph(**selector, plain=True))
    drawn[key + " colour"] = str(repo.ancestry_graph(**selector))
    drawn[key + " svg"] = repo.ancestry_graph(**selector)._repr_svg_()
drawn
"""

HISTORY = """
repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), spec_version=1)

def commit(branch, message, key):
    session = repo.writable_session(branch)
    zarr.open_group(session.store, mode="a").attrs[key] = message
    return session.commit(message)

ids = {}
ids["c1"] = commit("main", "first commit", "a")
repo.create_branch("dev", ids["c1"])
ids["c2"] = commit("main", "second on main", "b")
ids["d1"] = commit("dev", "dev work", "c")
# A fork of a dirty session writes, is merged back and committed.
session = repo.writable_session("main")
zarr.create_array(session.store, name="x", shape=(4,), chunks=(2,), dtype="i4")
fork = session.fork()
zarr.open_array(fork.store, path="x", mode="r+")[:] = [1, 2, 3, 4]
session.merge(fork)
ids["c3"] = session.commit("merge the fork's writes\\nwith a second line")
# A branch from an older commit, with work of its own.
repo.create_branch("hotfix", ids["c1"])
ids["h1"] = commit("hotfix", "fix an old release: " + "x" * 50, "d")
ids["d2"] = commit("dev", "<b>more</b> dev & \\"work\\"", "e")
repo.create_tag("v1", ids["c2"])
repo.create_tag("v2", ids["c3"])
repo.create_tag("also-v2", ids["c3"])
# Reset branches: dev one step back; feature onto main's tip (a column with no snapshot).
repo.reset_branch("dev", ids["d1"])
repo.create_branch("feature", ids["h1"])
ids["f1"] = commit("feature", "feature work é", "f")
repo.reset_branch("feature", ids["c3"])
ids["root"] = list(repo.ancestry(branch="main"))[-1].id
ids
"""


def _svg_lines_sorted(svg: str) -> str:
    # The reference emits some <line> elements in its hash map's order: compare them as a set.
    rows = svg.split("\n")
    lines = sorted(r for r in rows if r.startswith("  <line "))
    rest = [r for r in rows if not r.startswith("  <line ")]
    return "\n".join(lines + rest)


def _selectors(ids: dict[str, str], branches: list[str], tags: list[str]) -> list[Any]:
    out: list[tuple[str, dict[str, str]]] = [("all", {})]
    out += [(f"branch={b}", {"branch": b}) for b in branches]
    out += [(f"tag={t}", {"tag": t}) for t in tags]
    out += [(f"snapshot={k}", {"snapshot_id": ids[k]}) for k in ("c1", "d2", "f1", "root")]
    return out


def _ours(path: Path, selectors: list[Any]) -> dict[str, str]:
    repo = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    drawn = {}
    for key, selector in selectors:
        drawn[f"{key} plain"] = str(ancestry_graph(repo, **selector, plain=True))
        drawn[f"{key} colour"] = str(ancestry_graph(repo, **selector))
        drawn[f"{key} svg"] = ancestry_graph(repo, **selector)._repr_svg_()
    return drawn


def _compare(ours: dict[str, str], reference: dict[str, str]) -> None:
    assert ours.keys() == reference.keys()
    for key, theirs in reference.items():
        mine = ours[key]
        if key.endswith(" svg"):
            mine, theirs = _svg_lines_sorted(mine), _svg_lines_sorted(theirs)
        assert mine == theirs, f"{key}:\n--- pyicechunk\n{mine}\n--- icechunk 2.3.0\n{theirs}"


def test_every_selector_draws_as_icechunk_2_3_0(
    ic2: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    path = tmp_path / "repo"
    ids = ic2.run(HISTORY, path=path)
    branches = ["main", "dev", "hotfix", "feature"]
    selectors = _selectors(ids, branches, ["v1", "v2", "also-v2"])
    reference = ic2.run(DRAW, path=path, selectors=selectors)
    _compare(_ours(path, selectors), reference)
    # What the drawing shows, spelled out once so a regression on both sides is caught too.
    plain = reference["all plain"]
    assert plain.startswith("      ● ") and "(hotfix) fix an old release: " in plain
    assert "(main, feature, also-v2, v2) merge the fork's writes\n" in plain
    assert "\n●─╯───╯ " in plain and "x" * 37 + "...\n" in plain  # feature: an empty lane
    assert "more dev" not in plain  # dev was reset past it: unreachable, not drawn
    assert reference["tag=v1 plain"].splitlines()[0].endswith("(, v1) second on main")
    assert f"{ids['c1'][:8]} () first commit" in reference["snapshot=c1 plain"]


MANY = """
repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), spec_version=1)
main = [repo.lookup_branch("main")]
for i in range(6):
    main.append(repo.writable_session("main").commit(f"main {i}", allow_empty=True))
# Seven side branches from different points of main, committed in turns: lanes, colours
# cycling past the palette's five, branches forked from side branches.
names = ["zeta", "alpha", "mu", "beta", "omega", "kappa", "delta"]
for n, name in enumerate(names):
    repo.create_branch(name, main[n % len(main)])
for turn in range(3):
    for name in names:
        repo.writable_session(name).commit(f"{name} {turn}", allow_empty=True)
repo.create_branch("from-alpha", repo.lookup_branch("alpha"))
repo.writable_session("from-alpha").commit("on top of alpha", allow_empty=True)
repo.create_tag("t-alpha", repo.lookup_branch("alpha"))
"""

LONG = """
repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), spec_version=1)
first = repo.writable_session("main").commit("c 0", allow_empty=True)
repo.create_branch("side", first)
for i in range(1, 106):
    branch = "side" if i % 7 == 0 else "main"
    repo.writable_session(branch).commit(f"c {i}", allow_empty=True)
"""


@pytest.mark.parametrize("history", [MANY, LONG], ids=["many-branches", "over-100-snapshots"])
def test_lanes_colours_and_truncation_draw_as_icechunk_2_3_0(
    ic2: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history: str
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    path = tmp_path / "repo"
    ic2.run(history, path=path)
    branches = ic2.run("sorted(repo.list_branches())")
    selectors: list[Any] = [("all", {})] + [(f"branch={b}", {"branch": b}) for b in branches]
    reference = ic2.run(DRAW, path=path, selectors=selectors)
    _compare(_ours(path, selectors), reference)
    if history is LONG:
        assert "  ... (showing 100 of 107 snapshots)\n" in reference["all plain"]
    else:
        assert "\x1b[38;2;248;129;209m" in reference["all colour"]  # the fifth colour is used


def _graph(*commits: tuple[str, str | None, str], **kwargs: Any) -> AncestryGraph:
    """A one-branch graph of ``(id, parent, message)`` commits, newest first."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    infos = [
        pyicechunk.SnapshotInfo(sid, parent, start - dt.timedelta(seconds=i), message, {}, [])
        for i, (sid, parent, message) in enumerate(commits)
    ]
    return AncestryGraph._build([("main", infos)], {}, ["main"], **kwargs)


def test_messages_are_cut_at_a_character_boundary() -> None:
    # The reference cuts the UTF-8 bytes at 57 and panics inside a character; we cut before it.
    graph = _graph(("A" * 20, None, "é" * 40), plain=True)
    assert str(graph) == "● AAAAAAAA (main) " + "é" * 28 + "...\n"
    assert str(_graph(("A" * 20, None, ""), plain=True)) == "● AAAAAAAA (main) \n"
    assert str(_graph(("A" * 20, None, "one\r\ntwo"), plain=True)) == "● AAAAAAAA (main) one\n"


def test_no_color_turns_colours_off(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = _graph(("B" * 20, "A" * 20, "two"), ("A" * 20, None, "one"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in str(graph) and not graph.plain
    monkeypatch.setenv("NO_COLOR", "1")
    assert str(graph) == repr(graph) == "● BBBBBBBB (main) two\n│ \n● AAAAAAAA one\n"
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
    assert "\x1b[" in str(graph)


def test_graph_value_and_misuse(tmp_path: Path) -> None:
    repo = pyicechunk.Repository.create(pyicechunk.local_filesystem_storage(str(tmp_path)))
    with pytest.raises(ValueError, match="Must provide one of branch, tag, or snapshot_id"):
        ancestry_graph(repo, branch="main", tag="v1")
    with pytest.raises(TypeError, match=r"Repository\.ancestry_graph"):
        AncestryGraph()
    with pytest.raises(pyicechunk.IcechunkError):
        ancestry_graph(repo, branch="nope")
    graph = ancestry_graph(repo, plain=True)
    assert graph == ancestry_graph(repo, branch="main", plain=True)
    assert [n.message for n in graph.nodes] == ["Repository initialized"]
    assert (graph.num_columns, graph.total_snapshots) == (1, 1)
    assert graph.nodes[0].branches == ("main",) and graph.nodes[0].column == 0
    html = graph._repr_html_()
    assert html.startswith("<div") and graph._repr_svg_() in html
    empty = AncestryGraph._build([], {}, [], plain=True)
    assert str(empty) == "(empty history)\n" and "(empty history)" in empty._repr_svg_()


def test_svg_renders_in_headless_chromium(ic2: Oracle, tmp_path: Path, page: Any) -> None:
    from _chromium import ink

    path = tmp_path / "repo"
    ic2.run(HISTORY, path=path)
    repo = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    graph = ancestry_graph(repo)
    page.set_content(f"<html><body style='margin:0;background:#fff'>{graph._repr_html_()}</body>")
    svg = page.locator("svg")
    box = svg.bounding_box()
    rows = len(graph.nodes)
    assert box is not None and (box["width"], box["height"]) == (609, 20 + 28 * rows)
    shot = tmp_path / "ancestry-graph.png"
    svg.screenshot(path=str(shot))
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG")
    coloured = ink(page, png)
    assert coloured > 2000, f"the screenshot {shot} is (almost) blank: {coloured} pixels drawn"
    # Every snapshot drawn is a circle with a label beside it.
    assert page.locator("circle").count() == rows == 6
    assert "first commit" in (page.locator("svg").text_content() or "")
