"""Output formats. The JSON schema is documented in the README and stable."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import TextIO

from aiperf_lint.model import FileError, Finding, TextEdit

JSON_SCHEMA_VERSION = 1


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class _Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text


def location(finding: Finding) -> str:
    if finding.cell is not None:
        return f"{finding.path}:cell {finding.cell + 1}:line {finding.line}:col {finding.column}"
    return f"{finding.path}:{finding.line}:{finding.column}"


def format_text(
    findings: list[Finding],
    stream: TextIO,
    fixed: int = 0,
    quiet: bool = False,
    file_errors: int = 0,
) -> None:
    style = _Style(use_colour(stream))
    for f in findings:
        marker = " [*]" if f.fix_applicability == "safe" else ""
        stream.write(f"{style(location(f), '1')}: {style(f.code, '31;1')}{marker} {f.message}\n")
    if quiet:
        return
    safe = sum(1 for f in findings if f.fix_applicability == "safe")
    unsafe = sum(1 for f in findings if f.fix_applicability == "unsafe")
    if findings:
        noun = "finding" if len(findings) == 1 else "findings"
        line = f"Found {len(findings)} {noun}"
        if fixed:
            line += f" ({fixed} fixed, {len(findings)} remaining)"
        stream.write(line + ".\n")
        if safe:
            stream.write(f"[*] {safe} fixable with `--fix`.\n")
        if unsafe:
            stream.write(f"{unsafe} more fixable with `--fix --unsafe-fixes`.\n")
    elif fixed:
        stream.write(
            f"Found {fixed} {'finding' if fixed == 1 else 'findings'} ({fixed} fixed, 0 remaining).\n"
        )
    elif file_errors:
        noun = "file" if file_errors == 1 else "files"
        stream.write(f"No findings, but {file_errors} {noun} could not be checked (see errors).\n")
    else:
        stream.write("All checks passed!\n")


def finding_dict(f: Finding) -> dict:
    fix = None
    if f.fix_applicability is not None and f.edits:
        fix = {"applicability": f.fix_applicability, "edits": [edit_dict(e) for e in f.edits]}
    out = {
        "path": f.path,
        "line": f.line,
        "column": f.column,
        "end_line": f.end_line,
        "end_column": f.end_column,
        "code": f.code,
        "name": f.name,
        "message": f.message,
        "fix": fix,
    }
    if f.cell is not None:
        out["cell"] = f.cell
    return out


def edit_dict(edit: TextEdit) -> dict:
    start = edit.location or (0, 0)
    end = edit.end_location or (0, 0)
    return {
        "content": edit.content,
        "location": {"line": start[0], "column": start[1]},
        "end_location": {"line": end[0], "column": end[1]},
    }


def format_json(findings: list[Finding], stream: TextIO) -> None:
    json.dump([finding_dict(f) for f in findings], stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def format_statistics(findings: list[Finding], stream: TextIO) -> None:
    counts = Counter((f.code, f.name) for f in findings)
    fixable = Counter(f.code for f in findings if f.fix_applicability == "safe")
    for (code, name), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        marker = "[*]" if fixable[code] else "   "
        stream.write(f"{count:>5}  {code}  {marker} {name}\n")


def format_errors(
    errors: list[FileError], stream: TextIO | None = None, debug: bool = False
) -> None:
    stream = stream or sys.stderr
    style = _Style(use_colour(stream))
    for error in errors:
        stream.write(f"{style('error', '31;1')}: {error.one_line()}\n")
        if debug and error.traceback:
            stream.write(error.traceback)
