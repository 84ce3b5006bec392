"""What the language server reports and offers, independent of the LSP library.

Positions here are 1-based (line, column in characters) like Finding's; the
LSP layer converts them to the client's units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aiperf_lint import config, engine, fixer, registry
from aiperf_lint.model import Finding

NEWLINE = re.compile(r"\r\n|\r|\n")
# (split so that linters scanning this file do not read it as a directive)
NOQA_COMMENT = "# " + "noqa: {code}"
NOQA_CODES = re.compile(r"#\s*noqa:\s?[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*", re.IGNORECASE)


@dataclass(frozen=True)
class Replacement:
    """Replace the text between two 1-based (line, column) positions."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


@dataclass
class Checked:
    findings: list[Finding]
    rules: list  # the rules that ran (fix-all re-runs the same ones)
    settings: config.Settings


def settings_for(path: str | None) -> config.Settings:
    """The CLI's configuration for that file (nearest pyproject.toml)."""
    start = Path(path).parent if path else Path.cwd()
    return config.load_settings(start if start.exists() else Path.cwd())


def check(text: str, path: str | None) -> Checked:
    """Findings (with fixes) for an open document; a syntax error gives none."""
    settings = settings_for(path)
    name = path or "<unsaved>"
    codes = settings.codes_for(Path(name), settings.enabled_codes())
    data = text.encode("utf-8", "surrogatepass")
    if engine.SKIP_FILE.search(data):
        return Checked([], [], settings)
    by_code = registry.rules_by_code()
    rules = engine.active_rules(data, [by_code[c] for c in sorted(codes)])
    try:
        findings, _errors = engine.lint_text(text, rules, name) if rules else ([], [])
    except engine.LintError:
        findings = []  # mid-edit syntax errors: the editor's Python server reports those
    return Checked(findings, rules, settings)


def fix_replacements(finding: Finding) -> list[Replacement]:
    return [
        Replacement(edit.location, edit.end_location, edit.content)
        for edit in finding.edits
        if edit.location is not None and edit.end_location is not None
    ]


def fix_all(text: str, checked: Checked, path: str | None) -> list[Replacement]:
    """Edits applying every safe fix (to a fixed point), as `--fix` would."""
    if not any(f.fix_applicability == "safe" and f.edits for f in checked.findings):
        return []
    try:
        new_text = fixer.fix_text(text, checked.rules, path or "<unsaved>", unsafe=False).text
    except engine.LintError:
        return []
    return [
        Replacement(edit.location, edit.end_location, edit.content)
        for edit in (e.located(text) for e in fixer.diff_edits(text, new_text))
    ]


def noqa_replacement(text: str, finding: Finding) -> Replacement | None:
    """`# noqa: CODE` on the reported line (or the statement's first line), if that silences it."""
    lines = NEWLINE.split(text)
    for line_number in dict.fromkeys((finding.line, finding.statement_line or finding.line)):
        replacement = _noqa_on_line(lines, line_number, finding.code)
        if replacement is not None and _silences(text, replacement, finding):
            return replacement
    return None


def _noqa_on_line(lines: list[str], line_number: int, code: str) -> Replacement | None:
    if not 1 <= line_number <= len(lines):
        return None
    line = lines[line_number - 1]
    existing = NOQA_CODES.search(line)
    if existing is not None:  # extend the existing code list rather than add a second comment
        end = existing.end() + 1
        return Replacement((line_number, end), (line_number, end), f", {code}")
    end = len(line) + 1
    code_part = line.rstrip()
    spacing = "  " if code_part else ""
    start = len(code_part) + 1
    return Replacement(
        (line_number, start), (line_number, end), spacing + NOQA_COMMENT.format(code=code)
    )


def _silences(text: str, replacement: Replacement, finding: Finding) -> bool:
    """The edited text still parses and its noqa map covers the finding's code on that line."""
    new_text = apply(text, [replacement])
    try:
        engine.parse(new_text, "<noqa>")
    except engine.LintError:
        return False
    codes = engine.noqa_map(new_text).get(replacement.start[0], set())
    return codes is None or finding.code in codes


def apply(text: str, replacements: list[Replacement]) -> str:
    """Apply replacements (non-overlapping) to text; used for checks and tests."""
    starts = _line_starts(text)
    spans = [(_offset(starts, r.start), _offset(starts, r.end), r.text) for r in replacements]
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in NEWLINE.finditer(text)]


def _offset(starts: list[int], position: tuple[int, int]) -> int:
    return starts[position[0] - 1] + position[1] - 1
