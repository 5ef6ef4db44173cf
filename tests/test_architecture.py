"""Checks that keep the package's structure as docs/architecture.md describes it.

Each rule reads the source under ``src/pyicechunk`` (nothing is imported), so a violation is
reported with the file and line that broke it:

* no module is longer than 800 lines;
* no import cycle among modules when they are imported (module-level imports only; those under
  ``if TYPE_CHECKING:`` and inside functions run later, or never);
* no module reads or writes another package's private attributes (``storage._backend``), or
  imports its private names;
* every object key and prefix of the repository layout is spelled in ``storage/keys.py`` only;
* at most a few blocks of code are repeated (identical runs of six or more statements).

``pyicechunk/testing/`` is test code shipped with the package (the storage conformance suite
and the fault-injecting backend inspect the backends' protected hooks, as ``tests/`` does): the
private-access rule does not apply to it, and its fixtures spell example keys.

``PENDING`` lists, by file and spelling, what the ``format/`` restructure still has to change
(its persisted-config codec reads the config classes' private field tables, and a codec labels
its errors with a key); anything else fails, and so does an entry that no longer occurs.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "pyicechunk"
MAX_LINES = 800
MAX_REPEATED_PAIRS = 12
REPEATED_RUN = 6
TEST_SUPPORT = "pyicechunk.testing"
KEYS_MODULE = "pyicechunk.storage.keys"
PENDING = {
    ("src/pyicechunk/format/config_serde.py", "self.cls._from_fields"),
    ("src/pyicechunk/format/config_serde.py", "store._TAG"),
    ("src/pyicechunk/format/config_serde.py", "CachingConfig._FIELDS"),
    ("src/pyicechunk/format/config_serde.py", "StorageTimeoutSettings._FIELDS"),
    ("src/pyicechunk/format/config_serde.py", "record._unknown"),
    ("src/pyicechunk/format/config_yaml.py", "'config.yaml'"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def _tree(name: str) -> ast.Module:
    path = _modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _where(name: str, node: ast.AST) -> str:
    path = _modules()[name].relative_to(SRC.parent)
    return f"{path}:{getattr(node, 'lineno', 0)}"


def _outstanding(found: list[tuple[str, str]], rule: str) -> list[str]:
    """The findings ``(place, spelling)`` not in PENDING; also fails on stale PENDING entries."""
    files = {place.partition(":")[0] for place, _ in found}
    seen = {(place.partition(":")[0], text) for place, text in found}
    stale = [entry for entry in PENDING if entry[0] in files and entry not in seen]
    assert not stale, f"PENDING entries for {rule} that no longer occur (delete them): {stale}"
    return [
        f"{place} {text}" for place, text in found if (place.partition(":")[0], text) not in PENDING
    ]


def _unit(name: str) -> str:
    """The package a module belongs to: ``pyicechunk.<first component>``."""
    return ".".join(name.split(".")[:2])


def _is_test_support(name: str) -> bool:
    return name == TEST_SUPPORT or name.startswith(TEST_SUPPORT + ".")


def test_the_checks_see_the_package() -> None:
    # Guards the rules below against passing vacuously on a moved tree.
    names = _modules()
    assert len(names) > 50
    assert {"pyicechunk", "pyicechunk.storage", KEYS_MODULE, "pyicechunk.repo_state"} <= set(names)


# -- size -------------------------------------------------------------------------------------


def test_no_module_is_longer_than_800_lines() -> None:
    long = {
        str(path.relative_to(SRC.parent)): n
        for path in _modules().values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"


# -- import cycles ----------------------------------------------------------------------------


def _module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported (not in functions or TYPE_CHECKING)."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With):
            pending.extend(node.body)


def _import_targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    names = _modules()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in names:
                yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module if _modules()[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    for alias in node.names:
        # `from package import submodule` needs the submodule, not the package's names.
        submodule = f"{base}.{alias.name}"
        if submodule in names:
            yield submodule
        elif base in names:
            yield base


def _import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in _modules()}
    for name in _modules():
        for node in _module_level_imports(_tree(name)):
            graph[name].update(t for t in _import_targets(name, node) if t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = _import_graph()
    assert sum(len(targets) for targets in graph.values()) > 100  # the graph was built
    assert not _cycles(graph), f"modules importing each other at import time: {_cycles(graph)}"


# -- private attributes -----------------------------------------------------------------------


# A named tuple's own API is public despite its underscore.
_NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}


def _is_private(attr: str) -> bool:
    # `_0`, `_1` are pyo3's public names for a tuple variant's fields (config variants).
    return (
        attr.startswith("_")
        and not attr.startswith("__")
        and not attr[1:].isdigit()
        and attr not in _NAMEDTUPLE_API
    )


def _defined_private_names(name: str) -> set[str]:
    """Private names a module defines: module globals, class members, ``self._x`` fields."""
    out: set[str] = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name) and target.id == "__slots__":
                    value = node.value
                    if isinstance(value, ast.Tuple | ast.List):
                        out.update(e.value for e in value.elts if isinstance(e, ast.Constant))
    return {n for n in out if _is_private(n)}


def _own_object(value: ast.expr) -> bool:
    if isinstance(value, ast.Name):
        return value.id in ("self", "cls")
    return isinstance(value, ast.Call) and ast.unparse(value.func) == "super"


def _private_accesses() -> list[tuple[str, str]]:
    by_unit: dict[str, set[str]] = defaultdict(set)
    for name in _modules():
        by_unit[_unit(name)] |= _defined_private_names(name)
    found: list[tuple[str, str]] = []
    for name in _modules():
        if _is_test_support(name):
            continue
        unit = _unit(name)
        own = by_unit[unit]
        foreign = set().union(*(names for u, names in by_unit.items() if u != unit)) - own
        for node in ast.walk(_tree(name)):
            if (
                isinstance(node, ast.Attribute)
                and _is_private(node.attr)
                and node.attr in foreign
                and not _own_object(node.value)
            ):
                found.append((_where(name, node), ast.unparse(node)))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyicechunk"):
                if _unit(node.module or "") == unit:
                    continue
                for alias in node.names:
                    if _is_private(alias.name):
                        found.append((_where(name, node), f"import {node.module}.{alias.name}"))
    return found


def test_no_access_to_other_packages_private_attributes() -> None:
    found = _outstanding(_private_accesses(), "private names")
    assert not found, "private names used outside their package:\n" + "\n".join(found)


def test_the_private_access_rule_sees_a_violation() -> None:
    # The rule itself: a foreign private attribute is caught, one's own is not.
    assert _is_private("_backend") and not _is_private("__init__") and not _is_private("_0")
    storage = _defined_private_names("pyicechunk.storage.handle")
    assert "_backend" in storage
    assert "_backend" not in _defined_private_names("pyicechunk.repository")


# -- object keys ------------------------------------------------------------------------------

_KEY_PREFIXES = ("refs/", "snapshots/", "manifests/", "transactions/", "chunks/", "overwritten/")
_KEY_NAMES = {"config.yaml", "ref.json", "ref.json.deleted"}
# Storage methods whose first argument is a key: the spec-2 entry object `repo` is a common
# word, so it only counts as a key there.
_STORAGE_METHODS = {
    "get",
    "get_view",
    "get_versioned",
    "put",
    "put_if_absent",
    "put_if_version",
    "exists",
    "head",
    "delete",
    "list",
}


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            found.add(id(node.value))
    return found


def _is_key_literal(text: str) -> bool:
    return text in _KEY_NAMES or text.startswith(_KEY_PREFIXES)


def _key_spellings(name: str) -> Iterator[tuple[str, str]]:
    tree = _tree(name)
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and _is_key_literal(node.value)
        ):
            yield _where(name, node), repr(node.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _STORAGE_METHODS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "repo"
        ):
            yield _where(name, node), "'repo'"


def test_object_keys_are_spelled_in_one_module() -> None:
    spelled = [
        found
        for name in _modules()
        if name != KEYS_MODULE and not _is_test_support(name)
        for found in _key_spellings(name)
    ]
    found = _outstanding(spelled, "object keys")
    assert not found, f"object keys spelled outside {KEYS_MODULE}:\n" + "\n".join(found)
    assert sum(1 for _ in _key_spellings(KEYS_MODULE)) >= 8  # the rule sees the real ones


# -- repeated blocks --------------------------------------------------------------------------

# A line counts when it has at least this many letters and digits: closing brackets, `else:`,
# `try:` or `pass` alone repeat everywhere and mean nothing.
_MIN_WORD_CHARS = 4
_WORD = re.compile(r"\w")


def _skipped_lines(tree: ast.Module) -> set[int]:
    """Lines of imports and docstrings (string statements), which do not count."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        prose = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if prose or isinstance(node, ast.Import | ast.ImportFrom):
            assert node.end_lineno is not None
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def _significant_lines(source: str, tree: ast.Module) -> list[tuple[str, int]]:
    """(normalised text, line number) of the lines that count, in order."""
    skip = _skipped_lines(tree)
    out = []
    for number, raw in enumerate(source.splitlines(), 1):
        text = " ".join(raw.split())
        if number in skip or not text or text.startswith("#"):
            continue
        if len(_WORD.findall(text)) < _MIN_WORD_CHARS:
            continue
        out.append((text, number))
    return out


def _repeated_pairs(sources: dict[str, str]) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Pairs of places sharing an identical run of REPEATED_RUN significant lines.

    Returns ``{(file a, file b): [(line in a, line in b), ...]}`` with the first line of each
    shared run; ``a`` may equal ``b`` for two places in one file.
    """
    lines = {name: _significant_lines(text, ast.parse(text)) for name, text in sources.items()}
    runs: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for name, sig in lines.items():
        for k in range(len(sig) - REPEATED_RUN + 1):
            runs[tuple(t for t, _ in sig[k : k + REPEATED_RUN])].append((name, k))
    pairs: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for places in runs.values():
        for (a, i), (b, j) in itertools.combinations(sorted(places), 2):
            if a == b and j - i < REPEATED_RUN:
                continue  # overlapping windows of one repeated run, not two places
            pairs[(a, b)].append((lines[a][i][1], lines[b][j][1]))
    return pairs


def test_the_repetition_detector_finds_a_copy() -> None:
    block = "\n".join(f"value_{i} = compute(alpha_{i}, beta_{i})" for i in range(7))
    other = "\n".join(f"other_{i} = compute(alpha_{i}, gamma_{i})" for i in range(7))
    sources = {
        "a": f'"""doc"""\nimport os\n\n{block}\n',
        "b": f"def f():\n    pass\n\n{block}\n",
        "c": other,
        "d": "\n".join(["x = 1", "pass", "y = [", "]"] * 10),
    }
    pairs = _repeated_pairs(sources)
    assert set(pairs) == {("a", "b")}
    assert pairs[("a", "b")][0] == (4, 4)


def test_few_repeated_blocks() -> None:
    sources = {
        str(path.relative_to(SRC.parent)): path.read_text(encoding="utf-8")
        for path in _modules().values()
    }
    pairs = _repeated_pairs(sources)
    shown = "\n".join(
        f"{a}:{places[0][0]} ~ {b}:{places[0][1]} ({len(places)} windows)"
        for (a, b), places in sorted(pairs.items())
    )
    assert len(pairs) <= MAX_REPEATED_PAIRS, (
        f"{len(pairs)} pairs of places repeat a run of {REPEATED_RUN} lines (at most "
        f"{MAX_REPEATED_PAIRS}); let one function serve both:\n{shown}"
    )


def test_readme_layout_names_every_top_level_module() -> None:
    text = (SRC.parent / "README.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    entries = {
        f"{p.name}/" if p.is_dir() else p.name
        for p in PACKAGE.iterdir()
        if not p.name.startswith(("_", ".")) and (p.is_dir() or p.suffix == ".py")
    }
    assert "storage/" in entries
    missing = sorted(e for e in entries if e not in layout)
    assert not missing, f"README.md's Layout section does not mention {missing}"


@pytest.mark.parametrize("rule", ["size", "cycles", "private", "keys", "repeats"])
def test_rules_are_documented(rule: str) -> None:
    # docs/architecture.md states the rules this module checks.
    text = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    wording = {
        "size": "800 lines",
        "cycles": "import cycle",
        "private": "private",
        "keys": "storage/keys.py",
        "repeats": "repeated",
    }
    assert wording[rule] in text
