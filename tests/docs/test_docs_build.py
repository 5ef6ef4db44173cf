"""The user guide builds with Sphinx, every warning an error (broken links, unknown pages,
code that does not lex, pages missing from the table of contents)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_guide_builds_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "--fail-on-warning",
            "--keep-going",
            "--quiet",
            "--builder",
            "html",
            "--doctree-dir",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr or result.stdout
    pages = {p.stem for p in DOCS.glob("*.md")}
    built = {p.stem for p in out.glob("*.html")}
    assert pages <= built, f"pages not built: {sorted(pages - built)}"
    assert "Getting started" in (out / "getting-started.html").read_text(encoding="utf-8")
