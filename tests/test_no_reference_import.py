"""Nothing under src/ may use the reference implementation (icechunk) at import or run time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _is_reference(module: str | None) -> bool:
    return module is not None and (module == "icechunk" or module.startswith("icechunk."))


def _reference_uses(tree: ast.AST) -> list[int]:
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(_is_reference(alias.name) for alias in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_reference(node.module):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            # importlib.import_module("icechunk...") and __import__("icechunk...")
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    if _is_reference(first.value):
                        lines.append(node.lineno)
    return lines


def test_detector_catches_every_form() -> None:
    sample = (
        "import icechunk\nimport icechunk.xarray as x\nfrom icechunk import Repository\n"
        "import importlib\nimportlib.import_module('icechunk')\n__import__('icechunk.session')\n"
        "import icechunky\nfrom . import icechunk\nfrom pyicechunk import icechunk\n"
    )
    assert _reference_uses(ast.parse(sample)) == [1, 2, 3, 5, 6]


def test_src_does_not_import_icechunk() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert files, f"no Python files under {SRC}"
    offenders = {
        str(path.relative_to(SRC)): found
        for path in files
        if (found := _reference_uses(ast.parse(path.read_text(), filename=str(path))))
    }
    assert offenders == {}


def test_importing_our_package_does_not_load_the_reference() -> None:
    code = "import pyicechunk, sys; assert 'icechunk' not in sys.modules, 'icechunk was imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
