"""Checks that keep the package's structure as docs/architecture.md describes it.

Each rule reads the source under ``src/pyicechunk`` (nothing is imported), so a violation is
reported with the file and line that broke it:

* no module is longer than 800 lines;
* no import cycle among modules when they are imported (module-level imports only; those under
  ``if TYPE_CHECKING:`` and inside functions run later, or never);
* no module reads or writes another package's private attributes (``storage._backend``), or
  imports its private names;
* every object key and prefix of the repository layout is spelled in ``storage/keys.py`` only;
* at most a few pairs of files repeat a block of code (runs of six lines that are the same, or
  the same but for names, strings and numbers).

``pyicechunk/testing/`` is test code shipped with the package (the storage conformance suite
and the fault-injecting backend inspect the backends' protected hooks, as ``tests/`` does): the
private-access rule does not apply to it, and its fixtures spell example keys.

``PENDING`` lists, by file and spelling, exceptions still to be removed (none today); anything
else fails, and so does an entry that no longer occurs.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "pyicechunk"
MAX_LINES = 800
# Issue #9 asks for at most 12 pairs; this is the count on main at the end of the wave in which
# the rule started counting same-shape runs as well as identical ones: it may only go down.
MAX_REPEATED_PAIRS = 15
REPEATED_RUN = 6
TEST_SUPPORT = "pyicechunk.testing"
KEYS_MODULE = "pyicechunk.storage.keys"
PENDING: set[tuple[str, str]] = set()


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
#
# Code is read as text, line by line. A line counts unless it is blank, shorter than three
# characters, only brackets and separators, a comment or the first line of a triple-quoted
# string, or an import. Two places repeat each other when they hold a run of REPEATED_RUN
# counted lines that are the same (white space folded), or of the same *shape*: each name
# (keywords too) read as `x`, each string as `s`, each number as `0`. A shape run must have some
# substance: at least four tokens a line on average and two statements (an assignment, a line
# starting with a statement word, or one of eight tokens or more). A run found in more than
# COMMON_RUN places is a common idiom, not a copy, and does not count. Two places of one file
# count only if they do not overlap. The rule counts pairs of files (a file may pair with
# itself), however many runs a pair shares.

COMMON_RUN = 8
_MIN_SHAPE_TOKENS = 4 * REPEATED_RUN
_MIN_SHAPE_STATEMENTS = 2
_LONG_STATEMENT = 8
_TOKEN = re.compile(r"[A-Za-z_]\w*|[0-9][0-9a-fA-FxX_.]*|\S")
_QUOTE = re.compile("[\"']")
_ONLY_PUNCTUATION = re.compile(r"[\s{}()\[\];,:.]*")
_NOT_CODE = ("#", "*", "/*", '"""', "'''")
_IMPORT = re.compile(r"(import|from \S+ import)\b")
_STATEMENT_WORDS = frozenset(
    "if for while return else elif try except with raise yield await assert del continue break"
    " let var const loop catch throw defer go do unsafe goto".split()
)
_DECLARATION_WORDS = frozenset(
    "class struct enum interface trait union typedef impl pub export".split()
)
# `key: value,` and `pattern => value,`: entries of a table, not statements.
_OPERAND = r"(?:[sx0_](?: [:.] [:.]? ?x)*(?: \( [sx0_ .:,]*\)?)?)"
_TABLE_ENTRY = re.compile(rf"^(?:x )?{_OPERAND} (?:= >|:|- >) (?:x )?{_OPERAND} [,;]?$")


def _counted_line(raw: str) -> str:
    """The line with white space folded, or "" when it does not count."""
    text = " ".join(raw.split())
    if len(text) < 3 or _ONLY_PUNCTUATION.fullmatch(text) or _IMPORT.match(text):
        return ""
    if text.startswith(_NOT_CODE) and not text.startswith("*/"):
        return ""
    return text


def _tokens(text: str) -> list[str]:
    """Names, numbers, string literals closed on the line, and single other characters."""
    out: list[str] = []
    done = 0  # where the text not yet tokenised starts
    unclosed_after = {'"': -1, "'": -1}  # a quote opened there is never closed on the line
    for match in _QUOTE.finditer(text):
        quote, at = match.group(), match.start()
        if at < done or at > unclosed_after[quote] >= 0:
            continue
        end = at + 1
        while end < len(text) and text[end] != quote:
            end += 2 if text[end] == "\\" else 1
        if end >= len(text):
            unclosed_after[quote] = at
            continue
        out += _TOKEN.findall(text, done, at)
        out.append(text[at : end + 1])
        done = end + 1
    return out + _TOKEN.findall(text, done)


def _shape(tokens: list[str]) -> list[str]:
    def letter(token: str) -> str:
        if token[0].isalpha() or token[0] == "_":
            return "x"
        return "s" if token[0] in "\"'" else "0" if token[0].isdigit() else token

    return [letter(t) for t in tokens]


def _is_statement(tokens: list[str], shape: list[str]) -> bool:
    if not shape or shape[0] == "#" or _TABLE_ENTRY.match(" ".join(shape)):
        return False
    names = [t for t, s in zip(tokens, shape, strict=True) if s == "x"]
    if names and names[0] in _STATEMENT_WORDS:
        return True
    if names and names[0] in _DECLARATION_WORDS and shape[-1] in "{(:" and "=" not in shape:
        return False
    for k, token in enumerate(shape):
        before = shape[k - 1] if k else ""
        after = shape[k + 1] if k + 1 < len(shape) else ""
        if token == "=" and after not in ("=", ">") and before not in ("=", "!", "<", ">"):
            return True  # an assignment, not a comparison or an arrow
    return len(shape) >= _LONG_STATEMENT


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    shape: str
    tokens: int
    statement: bool


def _counted_lines(source: str) -> list[_Line]:
    out = []
    for number, raw in enumerate(source.split("\n"), 1):
        text = _counted_line(raw)
        if text:
            tokens = _tokens(text)
            shape = _shape(tokens)
            out.append(
                _Line(number, text, " ".join(shape), len(shape), _is_statement(tokens, shape))
            )
    return out


Place = tuple[str, int, int]  # file, first and last line of a run


def _runs(sources: dict[str, str]) -> Iterator[list[Place]]:
    """The places of each identical run and of each substantial same-shape run."""
    same: dict[tuple[str, ...], set[Place]] = defaultdict(set)
    alike: dict[tuple[str, ...], set[Place]] = defaultdict(set)
    for name, source in sources.items():
        lines = _counted_lines(source)
        for k in range(len(lines) - REPEATED_RUN + 1):
            run = lines[k : k + REPEATED_RUN]
            place = (name, run[0].number, run[-1].number)
            same[tuple(line.text for line in run)].add(place)
            tokens = sum(line.tokens for line in run)
            statements = sum(line.statement for line in run)
            if tokens >= _MIN_SHAPE_TOKENS and statements >= _MIN_SHAPE_STATEMENTS:
                alike[tuple(line.shape for line in run)].add(place)
    for places in itertools.chain(same.values(), alike.values()):
        if 1 < len(places) <= COMMON_RUN:
            yield sorted(places)


def _repeated_pairs(sources: dict[str, str]) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Pairs of files sharing a run (see above), ``a`` may equal ``b``.

    Returns ``{(file a, file b): [(first line in a, first line in b), ...]}``, one entry per
    shared run of REPEATED_RUN lines.
    """
    pairs: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)
    for places in _runs(sources):
        for (a, a_first, a_last), (b, b_first, _) in itertools.combinations(places, 2):
            if a != b or b_first > a_last:
                pairs[(a, b)].add((a_first, b_first))
    return {pair: sorted(found) for pair, found in pairs.items()}


def test_the_repetition_detector_finds_copies() -> None:
    block = "\n".join(f"value_{i} = compute(alpha_{i}, beta_{i})" for i in range(7))
    renamed = "\n".join(f"other_{i} = transform(gamma_{i}, delta_{i})" for i in range(7))
    thin = "\n".join(f"a{i} = b{i}" for i in range(7))  # too little substance for a shape
    sources = {
        "a": f'"""doc"""\nimport os\n\n{block}\n',
        "b": f"def f():\n    pass\n\n{block}\n",
        "c": renamed,
        "d": "\n".join(["xy", "# note", "    ]),", "import os"] * 10),  # none of these counts
        "e": thin,
        "f": thin.replace("a", "c"),
    }
    pairs = _repeated_pairs(sources)
    assert set(pairs) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert pairs[("a", "b")][0] == (4, 4)
    # A run in more than COMMON_RUN places is an idiom; one file pairs with itself.
    common = {str(k): block for k in range(COMMON_RUN + 1)}
    assert _repeated_pairs(common) == {}
    assert set(_repeated_pairs({"a": f"{block}\nsomething = else_(1)\n{block}"})) == {("a", "a")}


def test_the_tokens_of_a_line() -> None:
    assert _tokens("x = f('a b', \"c\") + 10") == [
        "x",
        "=",
        "f",
        "(",
        "'a b'",
        ",",
        '"c"',
        ")",
        "+",
        "10",
    ]
    assert _tokens('say("it\'s")') == ["say", "(", '"it\'s"', ")"]
    assert _shape(_tokens("if key in table: return 'v', 2")) == "x x x x : x s , 0".split()
    assert _counted_line("    )") == "" and _counted_line('"""Doc.') == ""
    assert _counted_line("from a import (") == "" and _counted_line("xy") == ""


def test_few_repeated_blocks() -> None:
    sources = {
        str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8")
        for path in _modules().values()
    }
    pairs = _repeated_pairs(sources)
    shown = "\n".join(
        f"{a}:{places[0][0]} ~ {b}:{places[0][1]} ({len(places)} runs)"
        for (a, b), places in sorted(pairs.items())
    )
    assert len(pairs) <= MAX_REPEATED_PAIRS, (
        f"{len(pairs)} pairs of files repeat a run of {REPEATED_RUN} lines (at most "
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
