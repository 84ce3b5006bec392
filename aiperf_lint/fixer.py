"""Turn CST fixes into text edits and apply them until nothing changes.

A rule's `Fix` replaces CST nodes (and may add imports). We render the whole
module with the replacement and diff it against the original text, which
gives text edits that touch only the changed characters: everything outside
them is byte-identical by construction (comments, formatting, line endings).
Non-overlapping fixes are applied per pass; the result is re-parsed and
re-linted, up to MAX_PASSES times.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import libcst as cst

from aiperf_lint.model import Finding, Fix, ImportSpec, TextEdit

MAX_PASSES = 10


class Replace(cst.CSTTransformer):
    def __init__(self, replacements) -> None:
        self.replacements = replacements

    def on_leave(self, original_node, updated_node):
        if original_node in self.replacements:
            return self.replacements[original_node]
        return updated_node


def render_fix(module: cst.Module, fix: Fix) -> str:
    new_module = module.visit(Replace(fix.replacements)) if fix.replacements else module
    for spec in fix.imports:
        new_module = ensure_import(new_module, spec)
    return new_module.code


def edits_for_fix(module: cst.Module, text: str, fix: Fix) -> list[TextEdit]:
    return diff_edits(text, render_fix(module, fix))


def diff_edits(old: str, new: str) -> list[TextEdit]:
    """Minimal character edits turning old into new (one per changed line block)."""
    if old == new:
        return []
    prefix = _common_prefix(old, new)
    suffix = _common_suffix(old[prefix:], new[prefix:])
    old_mid, new_mid = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
    old_lines = old_mid.splitlines(keepends=True)
    new_lines = new_mid.splitlines(keepends=True)
    if len(old_lines) <= 1 or len(new_lines) <= 1:
        return [TextEdit(prefix, len(old) - suffix, new_mid)]
    edits = []
    old_offsets = _offsets(old_lines, prefix)
    new_text_offsets = _offsets(new_lines, 0)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start, end = old_offsets[i1], old_offsets[i2]
        content = new_mid[new_text_offsets[j1] : new_text_offsets[j2]]
        edits.append(_trim(TextEdit(start, end, content), old))
    return edits


def _offsets(lines: list[str], base: int) -> list[int]:
    out = [base]
    for line in lines:
        out.append(out[-1] + len(line))
    return out


def _trim(edit: TextEdit, old: str) -> TextEdit:
    original = old[edit.start : edit.end]
    p = _common_prefix(original, edit.content)
    s = _common_suffix(original[p:], edit.content[p:])
    return TextEdit(edit.start + p, edit.end - s, edit.content[p : len(edit.content) - s])


def _common_prefix(a: str, b: str) -> int:
    # Binary search over slice comparisons: C-speed on megabyte files.
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: str, b: str) -> int:
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[len(a) - mid : len(a) - low] == b[len(b) - mid : len(b) - low]:
            low = mid
        else:
            high = mid - 1
    return low


def apply_edits(text: str, edits: Sequence[TextEdit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text


def select_non_overlapping(findings: Sequence[Finding]) -> list[Finding]:
    """Greedy, in source order: a fix is applied whole or not at all this pass."""
    taken: list[tuple[int, int]] = []
    chosen = []
    for finding in sorted(findings, key=lambda f: min(e.start for e in f.edits)):
        spans = [(e.start, e.end) for e in finding.edits]
        if any(_overlaps(s, t) for s in spans for t in taken):
            continue
        taken.extend(spans)
        chosen.append(finding)
    return chosen


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    # Touching spans count as overlapping: two insertions at one point would
    # otherwise be applied in an arbitrary order.
    return a[0] <= b[1] and b[0] <= a[1]


def fixable(findings: Sequence[Finding], unsafe: bool) -> list[Finding]:
    allowed = {"safe", "unsafe"} if unsafe else {"safe"}
    return [f for f in findings if f.edits and f.fix_applicability in allowed]


# ---------------------------------------------------------------- imports


def has_import(module: cst.Module, spec: ImportSpec) -> bool:
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if spec.name is None and isinstance(small, cst.Import):
                for alias in small.names:
                    if alias.asname is None and _dotted(alias.name) == spec.module:
                        return True
            if spec.name is not None and isinstance(small, cst.ImportFrom):
                if small.relative or small.module is None:
                    continue
                if _dotted(small.module) != spec.module or isinstance(small.names, cst.ImportStar):
                    continue
                for alias in small.names:
                    if alias.asname is None and _dotted(alias.name) == spec.name:
                        return True
    return False


def ensure_import(module: cst.Module, spec: ImportSpec) -> cst.Module:
    """Add `spec` after the last top-level import (or the docstring), once."""
    if has_import(module, spec):
        return module
    new_stmt = cst.parse_statement(
        spec.statement() + module.default_newline, module.config_for_parsing
    )
    body = list(module.body)
    insert_at = 1 if body and _is_docstring(body[0], 0) else 0
    for index, stmt in enumerate(body[insert_at:], start=insert_at):
        if not _is_import_line(stmt):
            break
        insert_at = index + 1
    if insert_at == 0 and body:
        first = body[0]
        # Keep a leading comment block (licence, shebang) above the import.
        new_stmt = new_stmt.with_changes(leading_lines=first.leading_lines)
        body[0] = first.with_changes(leading_lines=())
    body.insert(insert_at, new_stmt)
    return module.with_changes(body=body)


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _is_docstring(stmt: cst.CSTNode, index: int) -> bool:
    return (
        index == 0
        and isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _dotted(expr) -> str:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return f"{_dotted(expr.value)}.{expr.attr.value}"
    return ""


# ---------------------------------------------------------------- the fix loop


class FixOutcome:
    def __init__(self, text: str, applied: int, findings: list, errors: list) -> None:
        self.text = text
        self.applied = applied
        self.findings = findings  # what remains after fixing
        self.errors = errors


def fix_text(text: str, rules, path: str, unsafe: bool, keep=None) -> FixOutcome:
    """Apply fixes pass by pass until none applies; never return broken code.

    `keep(finding) -> bool` restricts which findings may be fixed (e.g. only
    those on changed lines).
    """
    from aiperf_lint.engine import LintError, lint_text
    from aiperf_lint.model import FileError

    current, applied = text, 0
    findings, errors = lint_text(current, rules, path)
    for _ in range(MAX_PASSES):
        candidates = fixable([f for f in findings if keep is None or keep(f)], unsafe)
        if not candidates:
            break
        chosen = select_non_overlapping(candidates)
        new_text = apply_edits(current, [e for f in chosen for e in f.edits])
        if new_text == current:
            break
        try:
            new_findings, new_errors = lint_text(new_text, rules, path)
        except LintError as exc:
            codes = ", ".join(sorted({f.code for f in chosen}))
            errors.append(
                FileError(
                    path,
                    f"internal error in {codes}: fix produced unparsable code ({exc.error.message}); file left unchanged by it",
                    kind="internal",
                )
            )
            break
        current, findings, errors = new_text, new_findings, new_errors
        applied += len(chosen)
    return FixOutcome(current, applied, findings, errors)
