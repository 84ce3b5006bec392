"""flake8 plugin: `flake8 --select AIP` reports what `aiperf-lint check` reports.

Registered as the `AIP` entry point of `flake8.extension`. Rules are chosen
like the CLI does for that file (`[tool.aiperf-lint]` in the nearest
pyproject.toml, per-file-ignores included); an opt-in rule named exactly in
flake8's `--select`/`--extend-select` runs too. flake8 then applies its own
selection and `# noqa` handling on top; with `--disable-noqa` our noqa
handling is switched off as well, so flake8 shows everything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from aiperf_lint import __version__, config, engine, registry
from aiperf_lint.model import Finding


class AiperfLintChecker:
    name = "aiperf-lint"
    version = __version__

    # Class-level, set once per flake8 run by parse_options.
    disable_noqa = False
    explicit_codes: frozenset[str] = frozenset()

    def __init__(self, tree: ast.AST, filename: str, lines: list[str]) -> None:
        self.filename = filename
        self.lines = lines

    @classmethod
    def parse_options(cls, options) -> None:
        cls.disable_noqa = bool(getattr(options, "disable_noqa", False))
        named = [
            *(getattr(options, "select", None) or ()),
            *(getattr(options, "extend_select", None) or ()),
        ]
        cls.explicit_codes = frozenset(
            code.upper() for code in named if code.upper() in registry.rules_by_code()
        )

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        source = "".join(self.lines)
        for finding in findings_for(source, self.filename, self.explicit_codes, self.disable_noqa):
            # flake8 columns are 0-based; it adds 1 when printing.
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)


def findings_for(
    source: str, filename: str, explicit: frozenset[str] = frozenset(), disable_noqa: bool = False
) -> list[Finding]:
    """The CLI's findings for one file (a config error propagates: flake8 shows it)."""
    path = Path(filename)
    directory = Path.cwd() if filename in {"stdin", "-"} else path.resolve().parent
    settings = _settings(str(directory))
    codes = settings.codes_for(path, settings.enabled_codes() | explicit)
    data = source.encode("utf-8", "surrogatepass")
    if engine.SKIP_FILE.search(data):
        return []
    by_code = registry.rules_by_code()
    rules = engine.active_rules(data, [by_code[c] for c in sorted(codes)])
    if not rules:
        return []
    find = engine.raw_findings if disable_noqa else engine.lint_text
    try:
        return find(source, rules, filename, with_fixes=False)[0]
    except engine.LintError:
        return []  # flake8 reports syntax errors itself (E999)


@lru_cache(maxsize=64)
def _settings(directory: str) -> config.Settings:
    return config.load_settings(Path(directory))
