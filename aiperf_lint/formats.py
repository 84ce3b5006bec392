"""Output formats for CI and code review: SARIF 2.1.0, GitHub annotations, Markdown.

`--format sarif` feeds GitHub code scanning and reviewdog, `--format github`
prints workflow commands that GitHub turns into inline annotations, and
`--format markdown` writes a PR comment grouped by rule. Notebook findings
carry their code-cell index: SARIF puts it in the result's properties, the
other two name the cell in the text (their line numbers would otherwise point
into the notebook's JSON).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TextIO

from aiperf_lint import __version__, docs, registry, reporters
from aiperf_lint.model import Finding, TextEdit
from aiperf_lint.rule import Rule

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_URI = "https://github.com/aiperf-lint/aiperf-lint"
# Findings are performance advice, never errors: "warning" everywhere.
DEFAULT_LEVEL = "warning"


def cell_label(finding: Finding) -> str:
    """`cell 3, line 2, column 5` for notebook findings (cells counted from 1)."""
    return f"cell {finding.cell + 1}, line {finding.line}, column {finding.column}"


# ---------------------------------------------------------------- SARIF


def sarif_log(findings: list[Finding]) -> dict:
    rules = registry.all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    run = {
        "tool": {
            "driver": {
                "name": "aiperf-lint",
                "version": __version__,
                "informationUri": TOOL_URI,
                "rules": [_sarif_rule(rule) for rule in rules],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(f, index.get(f.code)) for f in findings],
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _sarif_rule(rule: type[Rule]) -> dict:
    properties = {"fix": rule.fix_kind, "defaultEnabled": rule.default_enabled}
    figure = docs.measured(rule)
    if figure:
        properties["measuredSpeedup"] = figure
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary()},
        "fullDescription": {"text": rule.message},
        "help": {"text": rule.docs(), "markdown": rule.docs()},
        "helpUri": docs.rule_url(rule),
        "defaultConfiguration": {"level": DEFAULT_LEVEL, "enabled": rule.default_enabled},
        "properties": properties,
    }


def _sarif_result(finding: Finding, rule_index: int | None) -> dict:
    result: dict = {
        "ruleId": finding.code,
        "level": DEFAULT_LEVEL,
        "message": {"text": finding.message},
        "locations": [{"physicalLocation": _physical_location(finding)}],
    }
    if rule_index is not None:
        result["ruleIndex"] = rule_index
    if finding.cell is not None:
        result["message"]["text"] = f"{cell_label(finding)}: {finding.message}"
        result["properties"] = {
            "cell": finding.cell,
            "cellLine": finding.line,
            "cellColumn": finding.column,
        }
    elif finding.fix_applicability is not None and finding.edits:
        result["fixes"] = [_sarif_fix(finding)]
    return result


def _physical_location(finding: Finding) -> dict:
    location: dict = {"artifactLocation": {"uri": _uri(finding.path)}}
    if finding.cell is None:  # cell-relative lines do not address the .ipynb file
        location["region"] = {
            "startLine": finding.line,
            "startColumn": finding.column,
            "endLine": finding.end_line,
            "endColumn": finding.end_column,
        }
    return location


def _sarif_fix(finding: Finding) -> dict:
    return {
        "description": {"text": f"{finding.fix_applicability} fix for {finding.code}"},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": _uri(finding.path)},
                "replacements": [_replacement(edit) for edit in finding.edits],
            }
        ],
    }


def _replacement(edit: TextEdit) -> dict:
    start = edit.location or (1, 1)
    end = edit.end_location or start
    return {
        "deletedRegion": {
            "startLine": start[0],
            "startColumn": start[1],
            "endLine": end[0],
            "endColumn": end[1],
        },
        "insertedContent": {"text": edit.content},
    }


def _uri(path: str) -> str:
    """A relative URI reference, as GitHub code scanning expects."""
    from urllib.parse import quote

    return quote(path.replace("\\", "/").removeprefix("./"))


def format_sarif(findings: list[Finding], stream: TextIO) -> None:
    json.dump(sarif_log(findings), stream, indent=2, ensure_ascii=False)
    stream.write("\n")


# ---------------------------------------------------------------- GitHub


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(finding: Finding) -> str:
    props = [f"file={_escape_property(finding.path)}"]
    message = finding.message
    if finding.cell is None:
        props += [
            f"line={finding.line}",
            f"col={finding.column}",
            f"endLine={finding.end_line}",
            f"endColumn={finding.end_column}",
        ]
    else:
        message = f"{cell_label(finding)}: {message}"
    props.append(f"title={_escape_property(finding.code)}")
    return f"::warning {','.join(props)}::{_escape_data(message)}"


def format_github(findings: list[Finding], stream: TextIO) -> None:
    for finding in findings:
        stream.write(github_line(finding) + "\n")


# ---------------------------------------------------------------- Markdown


def markdown_report(findings: list[Finding]) -> str:
    if not findings:
        return "### aiperf-lint\n\nNo performance findings.\n"
    by_code: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_code[finding.code].append(finding)
    noun = "finding" if len(findings) == 1 else "findings"
    lines = [
        f"### aiperf-lint: {len(findings)} {noun} in {len(by_code)} {'rule' if len(by_code) == 1 else 'rules'}",
        "",
    ]
    rules = registry.rules_by_code()
    for code in sorted(by_code):
        lines += _markdown_rule_section(code, rules.get(code), by_code[code])
    return "\n".join(lines)


def _markdown_rule_section(
    code: str, rule: type[Rule] | None, findings: list[Finding]
) -> list[str]:
    if rule is None:
        lines = [f"#### {code} ({len(findings)})", ""]
    else:
        lines = [f"#### [{code} `{rule.name}`]({docs.rule_url(rule)}) ({len(findings)})", ""]
        lines.append(f"> {rule.summary()}")
        figure = docs.measured(rule)
        lines.append(
            f"> Verifier: {figure}." if figure else "> Verifier: no measured figure recorded yet."
        )
        lines.append("")
    for f in findings:
        where = reporters.location(f)
        fix = {"safe": " (fix: `--fix`)", "unsafe": " (fix: `--fix --unsafe-fixes`)"}.get(
            f.fix_applicability or "", ""
        )
        lines.append(f"- `{where}` {f.message}{fix}")
    lines.append("")
    return lines


def format_markdown(findings: list[Finding], stream: TextIO) -> None:
    stream.write(markdown_report(findings))


FORMATTERS = {"sarif": format_sarif, "github": format_github, "markdown": format_markdown}
