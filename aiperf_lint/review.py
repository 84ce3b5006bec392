"""`--format github-review`: one JSON document for GitHub's "create a review
for a pull request" REST call, with one-click suggestions for safe fixes.

A safe fix whose edited lines all lie on lines the PR changed becomes a
```suggestion block over exactly those lines; any other fix is shown as a
```diff block labelled safe/unsafe.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from aiperf_lint import docs, fixer, registry
from aiperf_lint.adoption import ChangedLines, _git
from aiperf_lint.model import Finding

DEFAULT_MAX_COMMENTS = 50


@dataclass
class Comment:
    path: str
    line: int
    start_line: int | None
    bodies: list[str]

    def payload(self) -> dict:
        out = {
            "path": self.path,
            "line": self.line,
            "side": "RIGHT",
            "body": "\n\n---\n\n".join(self.bodies),
        }
        if self.start_line is not None and self.start_line != self.line:
            out["start_line"] = self.start_line
            out["start_side"] = "RIGHT"
        return out


def _rule_link(code: str) -> str:
    rule = registry.get_rule(code)
    if rule is None:
        return code
    return f"[{rule.code} `{rule.name}`]({docs.rule_url(rule)})"


def _measured(code: str) -> str:
    rule = registry.get_rule(code)
    figure = docs.measured(rule) if rule is not None else None
    return f"Verifier: {figure}" if figure else ""


def _line_span(text: str, finding: Finding) -> tuple[int, int]:
    """First and last original line an edit touches (1-based, inclusive)."""
    first = min(e.location[0] for e in finding.edits)
    last = max(
        e.end_location[0] - 1
        if e.end_location[1] == 1 and e.end_location[0] > e.location[0]
        else e.end_location[0]
        for e in finding.edits
    )
    return first, max(first, last)


def suggestion_lines(text: str, finding: Finding) -> tuple[int, int, str]:
    """(first line, last line, replacement text for those lines) of a fix."""
    first, last = _line_span(text, finding)
    lines = text.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: first - 1])
    end = sum(len(line) for line in lines[:last])
    fixed = fixer.apply_edits(text, finding.edits)
    replacement = fixed[start : len(fixed) - (len(text) - end)]
    return first, last, replacement


def _diff_block(text: str, finding: Finding) -> str:
    fixed = fixer.apply_edits(text, finding.edits)
    diff = difflib.unified_diff(
        text.splitlines(keepends=True), fixed.splitlines(keepends=True), n=1, lineterm=""
    )
    body = [line.rstrip("\r\n") for line in diff][2:]  # drop the ---/+++ header
    return "\n".join(body)


def comment_for(
    finding: Finding, text: str | None, rel_path: str, changed: ChangedLines | None
) -> Comment:
    parts = [f"**{_rule_link(finding.code)}**: {finding.message}"]
    measured = _measured(finding.code)
    if measured:
        parts.append(measured)
    start_line = None
    line = finding.line
    if finding.edits and text is not None and finding.cell is None:
        first, last, replacement = suggestion_lines(text, finding)
        in_diff = changed is None or all(
            changed.contains(finding.path, n) for n in range(first, last + 1)
        )
        if finding.fix_applicability == "safe" and in_diff and first <= finding.line <= last:
            start_line, line = first, last
            block = replacement[:-1] if replacement.endswith("\n") else replacement
            parts.append("Safe fix (`aiperf-lint check --fix`):\n```suggestion\n" + block + "\n```")
        else:
            label = "Safe" if finding.fix_applicability == "safe" else "Unsafe"
            flag = "--fix" if label == "Safe" else "--fix --unsafe-fixes"
            parts.append(
                f"{label} fix (`aiperf-lint check {flag}`):\n```diff\n{_diff_block(text, finding)}\n```"
            )
    return Comment(rel_path, line, start_line, ["\n\n".join(parts)])


def build_review(
    findings: list[Finding],
    root: Path,
    changed: ChangedLines | None = None,
    max_comments: int = DEFAULT_MAX_COMMENTS,
) -> dict:
    texts: dict[str, str | None] = {}
    merged: dict[tuple, Comment] = {}
    for finding in sorted(findings, key=Finding.sort_key):
        if finding.path not in texts:
            texts[finding.path] = _read(finding.path)
        rel = _relative(finding.path, root)
        comment = comment_for(finding, texts[finding.path], rel, changed)
        key = (comment.path, comment.line, comment.start_line)
        if key in merged:
            merged[key].bodies.extend(comment.bodies)
        else:
            merged[key] = comment
    comments = list(merged.values())
    shown, hidden = comments[:max_comments], comments[max_comments:]
    return {
        "commit_id": _head(root),
        "event": "COMMENT",
        "body": summary(findings, sum(len(c.bodies) for c in hidden)),
        "comments": [c.payload() for c in shown],
    }


def summary(findings: list[Finding], not_shown: int) -> str:
    if not findings:
        return "**aiperf-lint**: no new findings on the changed lines."
    counts = Counter(f.code for f in findings)
    lines = [f"**aiperf-lint** found {len(findings)} new finding(s) on the changed lines:", ""]
    lines += ["| rule | findings | measured |", "|---|---|---|"]
    for code, count in sorted(counts.items()):
        rule = registry.get_rule(code)
        figure = (docs.measured(rule) if rule else None) or "-"
        lines.append(f"| {_rule_link(code)} | {count} | {figure} |")
    if not_shown:
        lines += [
            "",
            f"{not_shown} more finding(s) are not shown as comments (comment cap reached).",
        ]
    return "\n".join(lines)


def _read(path: str) -> str | None:
    if path.endswith(".ipynb"):
        return None
    try:
        from aiperf_lint import engine

        return engine.decode(Path(path).read_bytes(), path).text
    except Exception:  # unreadable now: comment without a fix block
        return None


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _head(root: Path) -> str | None:
    try:
        return _git(["rev-parse", "HEAD"], root).strip()
    except Exception:
        return None


def format_github_review(
    findings: list[Finding],
    stream: TextIO,
    root: Path,
    changed: ChangedLines | None,
    max_comments: int,
) -> None:
    json.dump(
        build_review(findings, root, changed, max_comments), stream, indent=2, ensure_ascii=False
    )
    stream.write("\n")
