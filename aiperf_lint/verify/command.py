"""``aiperf-lint verify``: run every fixture pair and prove (or refute) its claimed gain.

The CLI builds the subparser with ``add_arguments`` and calls ``run``; ``main`` lets the
module run alone (``python -m aiperf_lint.verify.command``). The CLI imports this module
to build its parser even for ``check``, so it stays tiny: the work lives in session.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiperf_lint.verify import NAMED_SIZES

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run each fixture pair's before.py and after.py in fresh processes: check the results are equivalent and measure the speed-up."
    parser.add_argument(
        "fixture_dirs",
        nargs="*",
        type=Path,
        metavar="FIXTURE_DIR",
        help="a pair directory or a directory of pairs (default: ./fixtures)",
    )
    parser.add_argument(
        "--rule", metavar="CODES", help="comma-separated rule codes or prefixes, e.g. AIP401,AIP1"
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: CUDA when torch sees a GPU, else CPU",
    )
    parser.add_argument(
        "--size",
        default="default",
        type=_size_choice,
        help="small | default | large | an integer passed to setup() (default: default)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="measure every size in [sizes].sweep; plots with --report",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        help="interleaved repeats per pair (default 7; 3 with --check-only)",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        metavar="SECONDS",
        help="shortest measurement; fast calls are repeated to fill it (default 0.05)",
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="override every pair's timeout_s"
    )
    parser.add_argument(
        "--memory-cap",
        type=int,
        metavar="MIB",
        help="address-space cap per CPU child process, 0 = none (default: half the RAM)",
    )
    parser.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="stdout format"
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write results.json, results.md, chart.png (and sweep-*.png) into DIR",
    )
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="CI mode: check machinery and equivalence, measure, but never fail on speed",
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="write/update the committed fixtures/RESULTS-<device>.json evidence file",
    )


def _size_choice(text: str) -> str:
    if text in NAMED_SIZES or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError(
        f"expected small, default, large or a positive integer, got {text!r}"
    )


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from aiperf_lint.verify.session import UsageError, verify

    try:
        return verify(args)
    except UsageError as exc:
        print(f"aiperf-lint verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # the children were killed on the way out
        print("aiperf-lint verify: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiperf-lint verify")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
