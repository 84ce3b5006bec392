"""Command line: `aiperf-lint check|rule|rules|verify|server`.

`aiperf-lint [PATHS] [--fix]` (no subcommand) behaves as `aiperf-lint check`.
Exit codes: 0 no findings, 1 findings, 2 usage/config error or a file that
could not be read or parsed (every other file is still checked).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import sys
from pathlib import Path

from aiperf_lint import __version__, config, registry
from aiperf_lint.model import FileError, FileResult, Finding

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

# Subcommands implemented in their own packages, imported only when used.
LAZY_COMMANDS = {
    "verify": ("aiperf_lint.verify.command", "measure before/after fixture pairs"),
    "server": ("aiperf_lint.server.command", "run the language server (stdio)"),
}
SUBCOMMANDS = {"check", "rule", "rules", *LAZY_COMMANDS}

OUTPUT_FORMATS = ["text", "json", "sarif", "github", "markdown", "github-review"]


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exit 2 with one clear line."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aiperf-lint",
        description="Find, fix and measure performance traps in Python AI code.",
    )
    parser.add_argument("--version", action="version", version=f"aiperf-lint {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    add_check_arguments(sub.add_parser("check", help="lint files (default command)"))
    rule = sub.add_parser("rule", help="show the full documentation of a rule")
    rule.add_argument("code", help="rule code, e.g. AIP401")
    rules = sub.add_parser("rules", help="list all rules")
    rules.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    for name, (module_name, help_text) in LAZY_COMMANDS.items():
        module = _optional_module(module_name)
        if module is not None:
            module.add_arguments(sub.add_parser(name, help=help_text))
    return parser


def _optional_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None  # that subcommand is not part of this build
        raise


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", default=None, help="files or directories (default: .)")
    p.add_argument(
        "--select",
        type=_codes,
        help="comma-separated codes or prefixes to enable (ALL = every rule, opt-in ones too)",
    )
    p.add_argument("--ignore", type=_codes, help="comma-separated codes or prefixes to disable")
    p.add_argument(
        "--extend-select", type=_codes, help="codes or prefixes to enable on top of the selection"
    )
    p.add_argument("--fix", action="store_true", help="apply safe fixes")
    p.add_argument(
        "--unsafe-fixes",
        action="store_true",
        default=None,
        help="also apply (and show) unsafe fixes",
    )
    p.add_argument(
        "--diff", action="store_true", help="print the fixes as a unified diff; write nothing"
    )
    p.add_argument("--format", dest="output_format", choices=OUTPUT_FORMATS, default="text")
    p.add_argument(
        "--statistics", action="store_true", help="show counts per rule instead of each finding"
    )
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    p.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        default=None,
        help="parallel jobs (default: number of cores)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print findings only, no summary")
    p.add_argument("--config", type=Path, help="use this pyproject.toml instead of the nearest one")
    p.add_argument("--debug", action="store_true", help="print tracebacks of internal errors")
    p.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the result cache"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="result cache directory (default: .aiperf_lint_cache at the project root)",
    )
    adoption = p.add_argument_group("adopting on an existing codebase")
    adoption.add_argument(
        "--diff-base",
        metavar="REF",
        help="only findings on lines added or changed since `git merge-base REF HEAD` (incl. uncommitted)",
    )
    adoption.add_argument(
        "--baseline", type=Path, metavar="FILE", help="hide findings recorded in FILE"
    )
    adoption.add_argument(
        "--write-baseline", type=Path, metavar="FILE", help="record every current finding in FILE"
    )
    adoption.add_argument(
        "--show-stale", action="store_true", help="with --baseline: list entries no longer found"
    )
    adoption.add_argument(
        "--add-noqa", action="store_true", help="append `# noqa: CODE` to every current finding"
    )
    adoption.add_argument(
        "--review-max-comments",
        type=_positive_int,
        default=50,
        metavar="N",
        help="github-review: at most N comments (default 50); the rest are summarised",
    )


def _codes(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def normalise_argv(argv: list[str]) -> list[str]:
    """`aiperf-lint [PATHS] [--fix]` is `aiperf-lint check [PATHS] [--fix]`."""
    if not argv:
        return ["check"]
    if argv[0] in SUBCOMMANDS or argv[0] in {"-h", "--help", "--version"}:
        return argv
    return ["check", *argv]


def main(argv: list[str] | None = None) -> int:
    argv = normalise_argv(list(sys.argv[1:] if argv is None else argv))
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "check":
            return run_check(args)
        if args.command == "rule":
            return run_rule(args.code)
        if args.command == "rules":
            return run_rules(args.format)
        module_name, _ = LAZY_COMMANDS[args.command]
        return importlib.import_module(module_name).run(args)
    except UsageError as exc:
        print(f"aiperf-lint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except config.ConfigError as exc:
        print(f"aiperf-lint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("aiperf-lint: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


# ---------------------------------------------------------------- check


def resolve_settings(args) -> config.Settings:
    start = Path(args.paths[0]) if args.paths else Path.cwd()
    if not start.exists():
        start = Path.cwd()
    if args.config is not None and not args.config.is_file():
        raise config.ConfigError(f"{args.config}: config file not found")
    settings = config.load_settings(start, args.config)
    try:
        if args.select is not None:
            settings.select = registry.validate_selectors(args.select, "--select")
        if args.ignore is not None:
            settings.ignore = settings.ignore + registry.validate_selectors(args.ignore, "--ignore")
        if args.extend_select is not None:
            settings.extend_select = settings.extend_select + registry.validate_selectors(
                args.extend_select, "--extend-select"
            )
    except registry.SelectionError as exc:
        raise config.ConfigError(str(exc)) from None
    if args.unsafe_fixes is not None:
        settings.unsafe_fixes = args.unsafe_fixes
    return settings


def collect(args, settings: config.Settings) -> tuple[list[FileResult], list[FileError]]:
    from aiperf_lint import discovery, runner

    paths = args.paths or ["."]
    found = discovery.discover(paths, settings, include_notebooks=_notebooks_supported())
    errors = [FileError(path, reason, kind="io") for path, reason in found.errors]
    options = runner.LintOptions(
        codes=settings.enabled_codes(),
        settings=settings,
        fix=args.fix or args.diff,
        unsafe_fixes=settings.unsafe_fixes,
        write=args.fix and not args.diff,
        debug=args.debug,
        keep=args.changed_lines,
    )
    if not args.no_cache and args.changed_lines is None:
        from aiperf_lint import cache

        options.cache = cache.open_cache(settings, options.codes, args.cache_dir)
    jobs = args.jobs or config.cpu_count()
    results = list(runner.run(found.files, options, jobs))
    for result in results:
        errors.extend(result.errors)
    return results, errors


def _notebooks_supported() -> bool:
    return importlib.util.find_spec("aiperf_lint.notebook") is not None


def run_check(args) -> int:
    from aiperf_lint import adoption, reporters

    settings = resolve_settings(args)
    _check_adoption_flags(args)
    try:
        args.changed_lines = (
            adoption.changed_lines(args.diff_base, Path.cwd()) if args.diff_base else None
        )
        baseline = adoption.load_baseline(args.baseline) if args.baseline else None
    except adoption.AdoptionError as exc:
        raise UsageError(str(exc)) from None
    results, errors = collect(args, settings)
    findings: list[Finding] = sorted((f for r in results for f in r.findings), key=Finding.sort_key)
    stale: list[dict] = []
    if baseline is not None:
        findings, stale = adoption.apply_baseline(findings, baseline, settings.root)
    if args.write_baseline:
        count = adoption.write_baseline(args.write_baseline, findings, settings.root)
        print(f"Wrote {count} findings to the baseline {args.write_baseline}.", file=sys.stderr)
        reporters.format_errors(errors, debug=args.debug)
        return EXIT_ERROR if errors else EXIT_OK
    if args.add_noqa:
        return _run_add_noqa(findings, errors, args)
    fixed = sum(r.fixes_applied for r in results)
    out = sys.stdout
    if args.diff:
        changed = print_diff(results, out)
        reporters.format_errors(errors, debug=args.debug)
        if not args.quiet:
            print(f"Would fix {changed} {'file' if changed == 1 else 'files'}.", file=sys.stderr)
        return EXIT_ERROR if errors else (EXIT_FINDINGS if changed else EXIT_OK)
    if args.statistics:
        reporters.format_statistics(findings, out)
    elif args.output_format == "json":
        reporters.format_json(findings, out)
    elif args.output_format == "github-review":
        from aiperf_lint import review

        root = args.changed_lines.root if args.changed_lines else settings.root
        review.format_github_review(
            findings, out, root, args.changed_lines, args.review_max_comments
        )
    elif args.output_format != "text":
        from aiperf_lint import formats

        formats.FORMATTERS[args.output_format](findings, out)
    else:
        reporters.format_text(
            findings, out, fixed=fixed, quiet=args.quiet, file_errors=len({e.path for e in errors})
        )
    if args.show_stale:
        for entry in stale:
            print(
                f"stale baseline entry: {entry['path']}: {entry['code']} {entry['statement']}",
                file=sys.stderr,
            )
    reporters.format_errors(errors, debug=args.debug)
    if errors:
        return EXIT_ERROR
    if findings and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK


def _check_adoption_flags(args) -> None:
    if args.show_stale and not args.baseline:
        raise UsageError("--show-stale needs --baseline FILE")
    if args.add_noqa and (args.fix or args.diff):
        raise UsageError("--add-noqa cannot be combined with --fix or --diff")
    if args.write_baseline and args.baseline:
        raise UsageError("use either --baseline or --write-baseline")


def _run_add_noqa(findings: list[Finding], errors: list[FileError], args) -> int:
    from aiperf_lint import adoption, engine, fileio, reporters

    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    added = 0
    for path, file_findings in sorted(by_path.items()):
        data = Path(path).read_bytes()
        if path.endswith(".ipynb"):
            new_data, changed, skipped = adoption.add_noqa_notebook(data, file_findings)
        else:
            source = engine.decode(data, path)
            text, changed, skipped = adoption.add_noqa(source.text, file_findings)
            new_data = engine.encode(source, text)
        for finding in skipped:
            errors.append(
                FileError(path, f"{finding.code}: no line can carry a noqa comment", finding.line)
            )
        if changed and new_data is not None:
            fileio.atomic_write(Path(path), new_data, fileio.digest(data))
            added += changed
    print(f"Added or extended {added} noqa comments.", file=sys.stderr)
    reporters.format_errors(errors, debug=args.debug)
    return EXIT_ERROR if errors else EXIT_OK


def print_diff(results: list[FileResult], out) -> int:
    changed = 0
    for result in results:
        if result.fixed_text is None or result.original_text is None:
            continue
        changed += 1
        diff = difflib.unified_diff(
            result.original_text.splitlines(keepends=True),
            result.fixed_text.splitlines(keepends=True),
            fromfile=f"a/{result.path}",
            tofile=f"b/{result.path}",
        )
        for line in diff:
            out.write(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return changed


# ---------------------------------------------------------------- docs


def run_rule(code: str) -> int:
    rule = registry.get_rule(code)
    if rule is None:
        print(
            f"aiperf-lint: error: unknown rule code {code!r} (see `aiperf-lint rules`)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    from aiperf_lint import docs

    print(docs.rule_page(rule))
    return EXIT_OK


def run_rules(output_format: str) -> int:
    from aiperf_lint import docs

    if output_format == "json":
        import json

        print(json.dumps(docs.rules_json(), indent=2))
    elif output_format == "markdown":
        print(docs.rules_markdown_table())
    else:
        print(docs.rules_text_table())
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
