"""The code blocks of the user guide's pages, and how each kind is run.

A page's fenced blocks run in order, in one namespace per page:

- ``python`` blocks are executed;
- ``pycon`` blocks (``>>>`` prompts) are run by doctest, and their output must match;
- ``console`` blocks hold ``$ pyicechunk ...`` (or ``$ python -m pyicechunk ...``) commands, run
  through the command's entry point (:func:`pyicechunk.cli.main`) in this process. The lines
  after a command are its expected output (stdout then stderr), compared as doctest compares
  (``...`` matches anything, runs of whitespace are equal); a command shown without output
  has its output unchecked. A command must exit with status 0, or with status 1 when its
  expected output is an error line (``verb: error: ...``).

A block that must not run (an install command, a server that runs until Ctrl-C) is preceded by
an HTML comment ``<!-- not run: why -->``; shell languages (``bash``, ``sh``, ``shell``) are
only allowed that way. Blocks in other languages (``text``, ``yaml``, directives such as
``{toctree}``) are displays and never run.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from pyicechunk.cli import main

RUN = frozenset({"python", "pycon", "console"})
SHELL = frozenset({"bash", "sh", "shell", "zsh"})
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<why>\S.*?)\s*-->\s*$", re.DOTALL)
_ERROR_LINE = re.compile(r"^[\w ]+: error: ", re.MULTILINE)
_PROGRAMS = (("pyicechunk",), ("python", "-m", "pyicechunk"))
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    path: Path
    line: int  # 1-based line of the block's first content line
    language: str
    text: str
    not_run: str | None  # why it does not run, if marked so

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the Markdown page at ``path``, in order."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    found: list[Block] = []
    for previous, token in zip([None, *tokens], tokens, strict=False):
        if token.type != "fence" or token.map is None:
            continue
        why = None
        if previous is not None and previous.type == "html_block":
            match = _NOT_RUN.match(previous.content.strip())
            why = match["why"] if match else None
        language = token.info.split()[0] if token.info.strip() else ""
        found.append(Block(path, token.map[0] + 2, language, token.content, why))
    return found


def problems(block: Block) -> list[str]:
    """What is wrong with how a block is written (empty when it can be run or shown)."""
    where = block.where
    if not block.language:
        return [f"{where}: a fenced block needs a language (python, console, text, ...)"]
    if block.language in SHELL and block.not_run is None:
        return [
            f"{where}: a {block.language} block cannot be run: write it as a console block "
            "of pyicechunk commands, or mark it <!-- not run: why -->"
        ]
    if block.language == "console" and block.not_run is None:
        return [f"{where}: {e}" for e in _console_problems(block.text)]
    return []


@dataclass(frozen=True)
class Command:
    """One ``$ ...`` line of a console block and the output shown under it."""

    line: int
    args: list[str]
    expected: str


def _commands(text: str) -> Iterator[Command | str]:
    """The commands of a console block, or a message for each line that is not one."""
    current: tuple[int, list[str]] | None = None
    output: list[str] = []
    for number, line in enumerate(text.splitlines()):
        if line.startswith("$ "):
            if current is not None:
                yield Command(current[0], current[1], "\n".join(output))
            output = []
            words = shlex.split(line[2:])
            for program in _PROGRAMS:
                if tuple(words[: len(program)]) == program:
                    current = (number, words[len(program) :])
                    break
            else:
                current = None
                yield f"line {number + 1}: only pyicechunk commands run here: {line!r}"
        elif current is None:
            yield f"line {number + 1}: output before any command: {line!r}"
        else:
            output.append(line)
    if current is not None:
        yield Command(current[0], current[1], "\n".join(output))


def _console_problems(text: str) -> list[str]:
    found = list(_commands(text))
    errors = [c for c in found if isinstance(c, str)]
    if not found:
        errors.append("a console block without commands")
    return errors


class PageRunner:
    """Runs a page's blocks in order in one namespace."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self._checker = doctest.OutputChecker()

    def run(self, block: Block) -> None:
        if block.language == "python":
            # Padding puts the block's lines at their line numbers in the page, so a
            # traceback points into the Markdown file.
            source = "\n" * (block.line - 1) + block.text
            exec(compile(source, str(block.path), "exec"), self.namespace)
        elif block.language == "pycon":
            self._run_doctest(block)
        elif block.language == "console":
            for command in _commands(block.text):
                assert isinstance(command, Command), f"{block.where}: {command}"
                self._run_command(block, command)

    def _run_doctest(self, block: Block) -> None:
        test = doctest.DocTestParser().get_doctest(
            block.text, self.namespace, block.where, str(block.path), block.line - 1
        )
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=_FLAGS)
        result = runner.run(test, out=report.write, clear_globs=False)
        assert result.failed == 0, f"{block.where}: doctest failed\n{report.getvalue()}"

    def _run_command(self, block: Block, command: Command) -> None:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(command.args)
        got = out.getvalue() + err.getvalue()
        where = f"{block.path.name}:{block.line + command.line}"
        wanted_status = 1 if _ERROR_LINE.search(command.expected) else 0
        shown = "pyicechunk " + shlex.join(command.args)
        assert status == wanted_status, (
            f"{where}: `{shown}` exited with {status}, not {wanted_status}:\n{got}"
        )
        if command.expected.strip():
            expected = command.expected.rstrip() + "\n"
            assert self._checker.check_output(expected, got, _FLAGS), (
                f"{where}: `{shown}` printed\n{got}\ninstead of\n{expected}"
            )
