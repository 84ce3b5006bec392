"""A small, stable Python API over the engine (used by the verifier, LSP, flake8 plugin)."""

from __future__ import annotations

from collections.abc import Iterable

from aiperf_lint import engine, fixer, registry
from aiperf_lint.model import FileError, Finding


def _rules(select: Iterable[str] | None):
    codes = registry.resolve(list(select) if select is not None else None)
    by_code = registry.rules_by_code()
    return [by_code[c] for c in sorted(codes)]


def check_source(
    source: str, path: str = "<string>", select: Iterable[str] | None = None
) -> list[Finding]:
    """Findings for a source text (noqa honoured). Raises engine.LintError on syntax errors."""
    rules = engine.active_rules(source.encode("utf-8", "surrogatepass"), _rules(select))
    findings, _errors = engine.lint_text(source, rules, path)
    return findings


def check_source_with_errors(
    source: str, path: str = "<string>", select: Iterable[str] | None = None
) -> tuple[list[Finding], list[FileError]]:
    rules = engine.active_rules(source.encode("utf-8", "surrogatepass"), _rules(select))
    try:
        return engine.lint_text(source, rules, path)
    except engine.LintError as exc:
        return [], [exc.error]


def fix_source(
    source: str, path: str = "<string>", unsafe: bool = False, select: Iterable[str] | None = None
) -> str:
    """What `aiperf-lint check --fix [--unsafe-fixes]` makes of `source`."""
    rules = engine.active_rules(source.encode("utf-8", "surrogatepass"), _rules(select))
    if not rules:
        return source
    return fixer.fix_text(source, rules, path, unsafe).text
