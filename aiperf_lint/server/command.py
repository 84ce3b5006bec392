"""`aiperf-lint server`: the CLI side. Imports nothing heavy until it runs."""

from __future__ import annotations

import argparse
import importlib.util
import sys

INSTALL_HINT = "pip install 'aiperf-lint[lsp]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stdio",
        action="store_true",
        help="talk LSP over stdin/stdout (the default and only transport; accepted for editors that pass it)",
    )
    parser.add_argument(
        "--debounce",
        type=float,
        default=0.3,
        metavar="SECONDS",
        help="wait this long after the last edit before re-linting (default: 0.3)",
    )


def run(args) -> int:
    if importlib.util.find_spec("pygls") is None:
        print(
            f"aiperf-lint: error: the language server needs pygls: {INSTALL_HINT}", file=sys.stderr
        )
        return 2
    if args.debounce < 0:
        print("aiperf-lint: error: --debounce must be zero or more seconds", file=sys.stderr)
        return 2
    from aiperf_lint.server.lsp import create_server

    create_server(args.debounce).start_io()
    return 0
