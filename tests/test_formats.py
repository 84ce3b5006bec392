"""`--format sarif|github|markdown`: schema-valid SARIF, parseable annotations, a Markdown snapshot."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from aiperf_lint import api, cli, docs, formats, registry
from aiperf_lint.model import Finding
from aiperf_lint.rule import Rule

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SCHEMA = json.loads((DATA / "sarif" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
SNAPSHOT = DATA / "formats" / "markdown_snapshot.md"


def _run(capsys, *args: str) -> tuple[int, str]:
    code = cli.main([*args, "--jobs", "1"])
    return code, capsys.readouterr().out


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """Every rule's first INVALID example as a file, plus the fixture pairs' before.py files."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.aiperf-lint]\nselect = ["ALL"]\n', encoding="utf-8"
    )
    for rule in registry.all_rules():
        _, invalid = rule.examples()
        (tmp_path / f"{rule.code.lower()}_example.py").write_text(
            textwrap.dedent(invalid[0].code), encoding="utf-8"
        )
    for before in sorted((ROOT / "fixtures").glob("*/before.py")):
        shutil.copy(before, tmp_path / f"{before.parent.name}_before.py")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _json_findings(capsys) -> list[dict]:
    code, out = _run(capsys, "check", "--format", "json", ".")
    assert code == 1
    return json.loads(out)


# ---------------------------------------------------------------- SARIF


def test_sarif_validates_against_the_official_schema(project, capsys):
    code, out = _run(capsys, "check", "--format", "sarif", ".")
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["version"] == "2.1.0"


def test_sarif_driver_describes_every_rule(project, capsys):
    driver = json.loads(_run(capsys, "check", "--format", "sarif", ".")[1])["runs"][0]["tool"][
        "driver"
    ]
    described = {entry["id"]: entry for entry in driver["rules"]}
    assert set(described) == {rule.code for rule in registry.all_rules()}
    for rule in registry.all_rules():
        entry = described[rule.code]
        assert entry["name"] == rule.name
        assert entry["shortDescription"]["text"] == rule.summary()
        assert entry["fullDescription"]["text"]
        assert entry["helpUri"] == docs.rule_url(rule)
        assert entry["defaultConfiguration"]["level"] == "warning"
        assert entry["defaultConfiguration"]["enabled"] == rule.default_enabled


def test_sarif_results_match_the_json_output(project, capsys):
    expected = _json_findings(capsys)
    run = json.loads(_run(capsys, "check", "--format", "sarif", ".")[1])["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    got = []
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]
        region = location["region"]
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        got.append(
            (
                location["artifactLocation"]["uri"],
                region["startLine"],
                region["startColumn"],
                region["endLine"],
                region["endColumn"],
                result["ruleId"],
                result["message"]["text"],
            )
        )
    want = [
        (
            f["path"].removeprefix("./"),
            f["line"],
            f["column"],
            f["end_line"],
            f["end_column"],
            f["code"],
            f["message"],
        )
        for f in expected
    ]
    assert got == want
    assert got


def test_sarif_fixes_reproduce_the_fix_of_each_finding(project, capsys):
    run = json.loads(_run(capsys, "check", "--format", "sarif", ".")[1])["runs"][0]
    with_fixes = [r for r in run["results"] if "fixes" in r]
    assert with_fixes, "no fixable finding in the rules' examples"
    for result in with_fixes:
        change = result["fixes"][0]["artifactChanges"][0]
        path = project / change["artifactLocation"]["uri"]
        text = path.read_text(encoding="utf-8")
        fixed = _apply_sarif(text, change["replacements"])
        finding = next(
            f
            for f in api.check_source(text, str(path), select=["ALL"])
            if f.code == result["ruleId"]
            and f.line == result["locations"][0]["physicalLocation"]["region"]["startLine"]
        )
        assert fixed == _apply_finding(text, finding)
        assert fixed != text


def _apply_sarif(text: str, replacements: list[dict]) -> str:
    starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    spans = []
    for replacement in replacements:
        region = replacement["deletedRegion"]
        spans.append(
            (
                offset(region["startLine"], region["startColumn"]),
                offset(region["endLine"], region["endColumn"]),
                replacement["insertedContent"]["text"],
            )
        )
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _apply_finding(text: str, finding: Finding) -> str:
    for edit in sorted(finding.edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text


def test_sarif_with_no_findings_is_valid(tmp_path, monkeypatch, capsys):
    (tmp_path / "clean.py").write_text("x = 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out = _run(capsys, "check", "--format", "sarif", ".")
    assert code == 0
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["runs"][0]["results"] == []


def test_sarif_notebook_results_carry_the_cell(tmp_path):
    finding = _finding("AIP401", path="nb.ipynb", line=2, column=5, cell=2)
    log = formats.sarif_log([finding])
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    result = log["runs"][0]["results"][0]
    assert result["properties"] == {"cell": 2, "cellLine": 2, "cellColumn": 5}
    assert result["message"]["text"].startswith("cell 3, line 2, column 5: ")
    assert "region" not in result["locations"][0]["physicalLocation"]


# ---------------------------------------------------------------- GitHub

ANNOTATION = re.compile(r"^::warning (?P<props>[^:]*)::(?P<message>.*)$")


def _unescape(text: str) -> str:
    for escaped, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, char)
    return text


def _parse_annotation(line: str) -> dict:
    match = ANNOTATION.match(line)
    assert match, line
    props = dict(item.split("=", 1) for item in match.group("props").split(","))
    parsed = {key: _unescape(value) for key, value in props.items()}
    parsed["message"] = _unescape(match.group("message"))
    return parsed


def test_github_annotations_parse_back_to_the_findings(project, capsys):
    expected = _json_findings(capsys)
    code, out = _run(capsys, "check", "--format", "github", ".")
    assert code == 1
    parsed = [_parse_annotation(line) for line in out.splitlines()]
    assert [
        (
            p["file"],
            int(p["line"]),
            int(p["col"]),
            int(p["endLine"]),
            int(p["endColumn"]),
            p["title"],
            p["message"],
        )
        for p in parsed
    ] == [
        (f["path"], f["line"], f["column"], f["end_line"], f["end_column"], f["code"], f["message"])
        for f in expected
    ]


def test_github_escapes_separators_in_paths_and_messages():
    finding = _finding(
        "AIP401", path="dir,with:odd%name.py", message="50% slower:\nsee docs, please"
    )
    parsed = _parse_annotation(formats.github_line(finding))
    assert parsed["file"] == "dir,with:odd%name.py"
    assert parsed["message"] == "50% slower:\nsee docs, please"
    assert parsed["title"] == "AIP401"


def test_github_notebook_annotation_names_the_cell():
    parsed = _parse_annotation(
        formats.github_line(_finding("AIP401", path="nb.ipynb", line=2, column=5, cell=0))
    )
    assert "line" not in parsed
    assert parsed["message"].startswith("cell 1, line 2, column 5: ")


# ---------------------------------------------------------------- Markdown


class _FakeRuleA(Rule):
    """
    ## What it does
    Finds row loops over a DataFrame.
    """

    code = "AIP901"
    name = "fake-row-loop"
    message = "row loop; use column operations"


class _FakeRuleB(Rule):
    """
    ## What it does
    Finds something else.
    """

    code = "AIP902"
    name = "fake-other"
    message = "other"


def _finding(code, path="a.py", line=1, column=1, cell=None, message=None, fix=None) -> Finding:
    return Finding(
        code,
        "name",
        message or f"{code} message",
        path,
        line,
        column,
        line,
        column + 4,
        fix_applicability=fix,
        cell=cell,
    )


def test_markdown_snapshot(monkeypatch):
    monkeypatch.setattr(
        registry, "rules_by_code", lambda: {"AIP901": _FakeRuleA, "AIP902": _FakeRuleB}
    )
    figures = {"AIP901": "measured 41.2x at size 2000, CPU, 2026-11-25"}
    monkeypatch.setattr(docs, "measured", lambda rule: figures.get(rule.code))
    findings = [
        _finding(
            "AIP901", "src/train.py", 12, 5, message="row loop; use `df.a * df.b`", fix="safe"
        ),
        _finding("AIP901", "nb.ipynb", 3, 1, cell=1, message="row loop; use `df.a * df.b`"),
        _finding("AIP902", "src/serve.py", 40, 9, message="other thing", fix="unsafe"),
    ]
    report = formats.markdown_report(findings)
    if os.environ.get("AIPERF_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(report, encoding="utf-8")
    assert report == SNAPSHOT.read_text(encoding="utf-8")


def test_markdown_quotes_measured_figures_and_links_rules(project, capsys, monkeypatch):
    monkeypatch.setattr(docs, "measured", lambda rule: f"measured 9.9x for {rule.code}")
    code, out = _run(capsys, "check", "--format", "markdown", ".")
    assert code == 1
    codes = sorted({f["code"] for f in _json_findings(capsys)})
    for code_ in codes:
        rule = registry.get_rule(code_)
        assert f"[{code_} `{rule.name}`]({docs.rule_url(rule)})" in out
        assert f"> Verifier: measured 9.9x for {code_}." in out


def test_markdown_without_findings(tmp_path, monkeypatch, capsys):
    (tmp_path / "clean.py").write_text("x = 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert _run(capsys, "check", "--format", "markdown", ".") == (
        0,
        "### aiperf-lint\n\nNo performance findings.\n",
    )


# ---------------------------------------------------------------- the GitHub Action


def _action_steps() -> list[dict]:
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    return action["runs"]["steps"]


def _step_env(step: dict, inputs: dict[str, str]) -> dict[str, str]:
    def expand(value: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: inputs[m.group(1)], value)

    return {key: expand(str(value)) for key, value in step.get("env", {}).items()}


def test_action_steps_run_and_produce_annotations_sarif_and_summary(project, tmp_path):
    """Run the action's own shell steps (as GitHub would, minus setup-python/pip/upload)."""
    steps = _action_steps()
    assert all(step.get("shell") == "bash" for step in steps if "run" in step)
    inputs = {
        "paths": ".",
        "args": "--select ALL",
        "sarif-file": str(tmp_path / "out.sarif"),
        "fail-on-findings": "true",
    }
    github_output, summary = tmp_path / "github_output", tmp_path / "summary.md"
    base_env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(github_output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    results = {}
    for step in steps:
        if "run" not in step or step["name"] == "Install aiperf-lint":
            continue
        if "inputs.mode == 'review'" in step.get("if", ""):
            continue  # review mode has its own test (tests/test_adoption.py)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=project,
            env={**base_env, **_step_env(step, inputs)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        results[step["name"]] = proc
    sarif = json.loads((tmp_path / "out.sarif").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(SCHEMA).validate(sarif)
    assert sarif["runs"][0]["results"]
    assert f"file={tmp_path / 'out.sarif'}" in github_output.read_text(encoding="utf-8")
    assert summary.read_text(encoding="utf-8").startswith("### aiperf-lint: ")
    annotate = results["Annotate"]
    assert annotate.returncode == 1  # findings fail the job by default
    assert all(line.startswith("::warning file=") for line in annotate.stdout.splitlines())
    assert len(annotate.stdout.splitlines()) == len(sarif["runs"][0]["results"])


def test_action_can_report_without_failing(tmp_path):
    (step,) = [s for s in _action_steps() if s.get("name") == "Annotate"]
    rule = registry.get_rule("AIP401")
    (tmp_path / "bad.py").write_text(textwrap.dedent(rule.examples()[1][0].code), encoding="utf-8")
    inputs = {"paths": ".", "args": "", "fail-on-findings": "false"}
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            **_step_env(step, inputs),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("::warning ")
