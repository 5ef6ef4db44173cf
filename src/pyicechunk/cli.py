"""The ``pyicechunk`` command.

Subcommands: ``demo PATH`` builds a small versioned dataset and walks through its history;
``info`` prints versions for bug reports.
"""

from __future__ import annotations

import argparse
import sys

from pyicechunk.exceptions import IcechunkError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyicechunk",
        description="pyicechunk: transactional, version-controlled storage for Zarr v3.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="create a demo repository and show commits, branches, tags, time travel and diffs",
        description="Create a repository on the local filesystem at PATH, write a small "
        "weather dataset, append to it, branch, tag, and show the history.",
    )
    demo.add_argument("path", metavar="PATH", help="a new or empty directory")
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the Icechunk repository at PATH (anything else is refused, never deleted)",
    )
    commands.add_parser("info", help="print platform and library versions for bug reports")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``pyicechunk`` command line.

    Parameters
    ----------
    argv
        Arguments without the program name; None means ``sys.argv[1:]``.

    Returns
    -------
    int
        The process exit status: 0 on success, 1 when the command failed.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from pyicechunk.demo import run

            run(args.path, overwrite=args.overwrite)
        else:
            from pyicechunk._debug import print_debug_info

            print_debug_info()
    except IcechunkError as err:
        print(f"pyicechunk {args.command}: error: {err.message}", file=sys.stderr)
        return 1
    return 0
