"""The flake8 plugin, run through the real flake8: same findings as `aiperf-lint check`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aiperf_lint import registry

ROOT = Path(__file__).resolve().parent.parent
FORMAT = "%(path)s|%(row)d|%(col)d|%(code)s|%(text)s"
LOOP = """\
import pandas as pd
df = pd.read_csv("sales.csv")
for i, row in df.iterrows():{noqa}
    df.loc[i, "total"] = row["price"] * row["qty"]
"""


def _flake8(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", f"--format={FORMAT}", "--jobs=1", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _parse(stdout: str) -> list[tuple]:
    rows = []
    for line in stdout.splitlines():
        path, row, col, code, text = line.split("|", 4)
        rows.append((Path(path).as_posix().removeprefix("./"), int(row), int(col), code, text))
    return sorted(rows)


def _cli_json(*args: str, cwd: Path) -> list[tuple]:
    proc = subprocess.run(
        [sys.executable, "-m", "aiperf_lint", "check", "--format", "json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return sorted(
        (
            Path(f["path"]).as_posix().removeprefix("./"),
            f["line"],
            f["column"],
            f["code"],
            f["message"],
        )
        for f in json.loads(proc.stdout)
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The fixture pairs and every rule's INVALID examples, with the fixtures' config (select ALL)."""
    root = tmp_path_factory.mktemp("flake8")
    shutil.copytree(
        ROOT / "fixtures",
        root / "fixtures",
        ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.md"),
    )
    examples = root / "fixtures" / "examples"
    examples.mkdir()
    for rule in registry.all_rules():
        _, invalid = rule.examples()
        for index, example in enumerate(invalid):
            name = f"{rule.code.lower()}_invalid_{index}.py"
            (examples / name).write_text(textwrap.dedent(example.code), encoding="utf-8")
    return root


def test_the_plugin_is_registered(tmp_path):
    proc = _flake8("--version", cwd=tmp_path)
    assert "aiperf-lint:" in proc.stdout, (
        "flake8 does not see the plugin: reinstall with `pip install -e .`"
    )


def test_flake8_reports_exactly_what_the_cli_reports(corpus):
    proc = _flake8("--select", "AIP", "fixtures", cwd=corpus)
    assert proc.returncode in (0, 1), proc.stderr
    flake8_rows = _parse(proc.stdout)
    cli_rows = _cli_json("fixtures", cwd=corpus)
    # flake8 prints columns 1-based, as the CLI does
    assert flake8_rows == cli_rows
    assert {row[3] for row in cli_rows} == {rule.code for rule in registry.all_rules()}


def test_default_run_select_and_ignore_apply(tmp_path):
    (tmp_path / "bad.py").write_text(LOOP.format(noqa=""), encoding="utf-8")
    default = _parse(_flake8("bad.py", cwd=tmp_path).stdout)
    assert {"AIP401", "AIP403"} <= {row[3] for row in default}
    selected = _parse(_flake8("--select", "AIP403", "bad.py", cwd=tmp_path).stdout)
    assert [row[3] for row in selected] == ["AIP403"]
    ignored = _parse(
        _flake8("--select", "AIP", "--extend-ignore", "AIP403", "bad.py", cwd=tmp_path).stdout
    )
    assert [row[3] for row in ignored] == ["AIP401"]


def test_noqa_is_honoured_and_disable_noqa_reveals(tmp_path):
    (tmp_path / "bad.py").write_text(LOOP.format(noqa="  # noqa: AIP401"), encoding="utf-8")
    quiet = _parse(_flake8("--select", "AIP401", "bad.py", cwd=tmp_path).stdout)
    assert quiet == []
    loud = _parse(_flake8("--select", "AIP401", "--disable-noqa", "bad.py", cwd=tmp_path).stdout)
    assert [(row[1], row[2], row[3]) for row in loud] == [(3, 15, "AIP401")]


def test_project_config_is_shared_with_the_cli(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.aiperf-lint]\nignore = ["AIP403"]\n', encoding="utf-8"
    )
    (tmp_path / "bad.py").write_text(LOOP.format(noqa=""), encoding="utf-8")
    rows = _parse(_flake8("--select", "AIP", "bad.py", cwd=tmp_path).stdout)
    assert rows == _cli_json("bad.py", cwd=tmp_path)
    assert [row[3] for row in rows] == ["AIP401"]


def test_syntax_errors_are_left_to_flake8(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n", encoding="utf-8")
    proc = _flake8("--select", "AIP,E999", "broken.py", cwd=tmp_path)
    assert [row[3] for row in _parse(proc.stdout)] == ["E999"]
    assert "Traceback" not in proc.stderr


def test_opt_in_rules_run_when_named_exactly(tmp_path):
    opt_in = [rule for rule in registry.all_rules() if not rule.default_enabled]
    if not opt_in:
        pytest.skip("no opt-in rule registered yet")
    for rule in opt_in:
        _, invalid = rule.examples()
        (tmp_path / f"{rule.code.lower()}.py").write_text(
            textwrap.dedent(invalid[0].code), encoding="utf-8"
        )
    codes = ",".join(sorted(rule.code for rule in opt_in))
    by_prefix = _parse(_flake8("--select", "AIP", ".", cwd=tmp_path).stdout)
    assert not {rule.code for rule in opt_in} & {row[3] for row in by_prefix}
    named = _parse(_flake8("--select", codes, ".", cwd=tmp_path).stdout)
    assert named == _cli_json("--select", codes, ".", cwd=tmp_path)
    assert {row[3] for row in named} == {rule.code for rule in opt_in}
