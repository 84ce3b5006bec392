"""The command line, run as a user would: a real subprocess in a temp project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BAD = textwrap.dedent(
    """\
    import pandas as pd

    df = pd.read_csv("x.csv")
    for i, row in df.iterrows():
        df.loc[i, "total"] = row["price"] * row["qty"]
    """
)
FIXED = textwrap.dedent(
    """\
    import pandas as pd

    df = pd.read_csv("x.csv")
    df["total"] = df["price"] * df["qty"]
    """
)
CLEAN = "import pandas as pd\n\ndf = pd.read_csv('x.csv')\nprint(df.head())\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "aiperf_lint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


def test_findings_exit_1_with_ruff_style_lines(project):
    proc = run("check", ".", cwd=project)
    assert proc.returncode == 1
    assert "bad.py:4:15: AIP401 [*] `iterrows()` loop" in proc.stdout
    assert "bad.py:5:5: AIP403" in proc.stdout
    assert "Found 2 findings." in proc.stdout
    assert "[*] 1 fixable with `--fix`." in proc.stdout
    assert "\x1b[" not in proc.stdout  # no colour when not a TTY


def test_bare_form_is_check(project):
    bare = run("bad.py", cwd=project)
    explicit = run("check", "bad.py", cwd=project)
    assert bare.returncode == explicit.returncode == 1
    assert bare.stdout == explicit.stdout
    assert run(cwd=project).stdout == run("check", cwd=project).stdout


def test_no_findings_exit_0(project):
    proc = run("check", "clean.py", cwd=project)
    assert proc.returncode == 0
    assert "All checks passed!" in proc.stdout


def test_exit_zero(project):
    assert run("check", "--exit-zero", cwd=project).returncode == 0


def test_select_and_ignore(project):
    only_403 = run("check", "--select", "AIP403", "--format", "json", cwd=project)
    assert {f["code"] for f in json.loads(only_403.stdout)} == {"AIP403"}
    ignored = run("check", "--ignore", "AIP4", cwd=project)
    assert ignored.returncode == 0
    prefix = run(
        "check", "--select", "AIP40", "--ignore", "AIP401", "--format", "json", cwd=project
    )
    assert {f["code"] for f in json.loads(prefix.stdout)} == {"AIP403"}


def test_unknown_code_is_a_usage_error(project):
    proc = run("check", "--select", "AIP999", cwd=project)
    assert proc.returncode == 2
    assert "unknown rule code or prefix 'AIP999'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_json_schema(project):
    proc = run("check", "--format", "json", "bad.py", cwd=project)
    findings = json.loads(proc.stdout)
    first = next(f for f in findings if f["code"] == "AIP401")
    assert set(first) == {
        "path", "line", "column", "end_line", "end_column", "code", "name", "message", "fix",
    }  # fmt: skip
    assert (first["line"], first["column"]) == (4, 15)
    assert first["name"] == "pandas-iterrows-loop"
    assert first["fix"]["applicability"] == "safe"
    edit = first["fix"]["edits"][0]
    assert set(edit) == {"content", "location", "end_location"}
    # applying the edits by position gives the fixed file
    lines = BAD.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    text = BAD
    for e in sorted(first["fix"]["edits"], key=lambda e: -offsets[e["location"]["line"] - 1]):
        start = offsets[e["location"]["line"] - 1] + e["location"]["column"] - 1
        end = offsets[e["end_location"]["line"] - 1] + e["end_location"]["column"] - 1
        text = text[:start] + e["content"] + text[end:]
    assert text == FIXED
    other = next(f for f in findings if f["code"] == "AIP403")
    assert other["fix"] is None


def test_diff_writes_nothing(project):
    proc = run("check", "--diff", "bad.py", cwd=project)
    assert proc.returncode == 1
    assert "-for i, row in df.iterrows():" in proc.stdout
    assert '+df["total"] = df["price"] * df["qty"]' in proc.stdout
    assert (project / "bad.py").read_text() == BAD


def test_fix_writes_and_keeps_permissions(project):
    path = project / "bad.py"
    path.chmod(0o640)
    proc = run("check", "--fix", "bad.py", cwd=project)
    assert path.read_text() == FIXED
    assert (path.stat().st_mode & 0o777) == 0o640
    assert proc.returncode == 0  # everything left was fixed (AIP403 went with the loop)
    assert "1 fixed" in proc.stdout
    assert run("check", "--fix", "bad.py", cwd=project).stdout.count("fixed") == 0


def test_statistics(project):
    proc = run("check", "--statistics", cwd=project)
    assert "    1  AIP401  [*] pandas-iterrows-loop" in proc.stdout
    assert "    1  AIP403      pandas-cell-write-in-loop" in proc.stdout


def test_quiet_has_no_summary(project):
    proc = run("check", "-q", cwd=project)
    assert "Found" not in proc.stdout and "AIP401" in proc.stdout


def test_missing_path_is_an_error_but_others_are_checked(project):
    proc = run("check", "nope.py", "bad.py", cwd=project)
    assert proc.returncode == 2
    assert "nope.py: no such file or directory" in proc.stderr
    assert "AIP401" in proc.stdout


def test_syntax_error_reported_with_position(project):
    (project / "broken.py").write_text("import pandas as pd\ndef f(:\n    df.iterrows()\n")
    proc = run("check", ".", cwd=project)
    assert proc.returncode == 2
    line = next(ln for ln in proc.stderr.splitlines() if "broken.py" in ln)
    assert "broken.py:2:" in line and "SyntaxError" in line
    assert "AIP401" in proc.stdout  # the other files were still checked


def test_files_no_rule_can_match_are_not_parsed(project):
    # Documented trade-off: the prefilter skips files with no trigger of any
    # enabled rule, so a syntax error there is left to ruff/flake8.
    (project / "broken.py").write_text("def f(:\n    pass\n")
    assert run("check", "broken.py", cwd=project).returncode == 0


def test_noqa_variants(project):
    src = BAD.replace("iterrows():", "iterrows():  # noqa: AIP401").replace(
        '* row["qty"]', '* row["qty"]  # noqa'
    )
    (project / "bad.py").write_text(src)
    assert run("check", "bad.py", cwd=project).returncode == 0
    other_code = BAD.replace("iterrows():", "iterrows():  # noqa: AIP402")
    (project / "bad.py").write_text(other_code)
    assert "AIP401" in run("check", "bad.py", cwd=project).stdout


def test_noqa_on_first_line_of_multiline_statement(project):
    src = textwrap.dedent(
        """\
        import pandas as pd
        df = pd.read_csv("x.csv")
        out = (  # noqa: AIP402
            df.apply(lambda r: r["a"] * 2,
                     axis=1)
        )
        """
    )
    (project / "m.py").write_text(src)
    assert run("check", "m.py", cwd=project).returncode == 0
    (project / "m.py").write_text(src.replace("  # noqa: AIP402", ""))
    assert "m.py:4:5: AIP402" in run("check", "m.py", cwd=project).stdout


def test_noqa_inside_a_string_does_not_count(project):
    src = BAD.replace('"x.csv"', '"x.csv  # noqa"')
    (project / "bad.py").write_text(src)
    assert "AIP401" in run("check", "bad.py", cwd=project).stdout


def test_file_level_opt_outs(project):
    (project / "bad.py").write_text("# aiperf-lint: noqa: AIP403\n" + BAD)
    out = run("check", "bad.py", cwd=project).stdout
    assert "AIP401" in out and "AIP403" not in out
    (project / "bad.py").write_text("# aiperf-lint: skip-file\n" + BAD)
    assert run("check", "bad.py", cwd=project).returncode == 0


def test_config_select_ignore_and_cli_override(project):
    (project / "pyproject.toml").write_text('[tool.aiperf-lint]\nignore = ["AIP401"]\n')
    out = run("check", "--format", "json", cwd=project).stdout
    assert {f["code"] for f in json.loads(out)} == {"AIP403"}
    out = run("check", "--format", "json", "--select", "AIP401", cwd=project).stdout
    assert {f["code"] for f in json.loads(out)} == set()  # ignore still applies, like ruff
    (project / "pyproject.toml").write_text('[tool.aiperf-lint]\nselect = ["AIP403"]\n')
    out = run("check", "--format", "json", "--select", "AIP401", cwd=project).stdout
    assert {f["code"] for f in json.loads(out)} == {"AIP401"}


def test_per_file_ignores_and_excludes(project):
    (project / "sub").mkdir()
    (project / "sub" / "bad2.py").write_text(BAD)
    (project / "pyproject.toml").write_text(
        '[tool.aiperf-lint]\nextend-exclude = ["sub"]\n'
        '[tool.aiperf-lint.per-file-ignores]\n"bad.py" = ["AIP403"]\n'
    )
    findings = json.loads(run("check", "--format", "json", cwd=project).stdout)
    assert {(Path(f["path"]).name, f["code"]) for f in findings} == {("bad.py", "AIP401")}
    # an explicitly named file is always checked
    named = json.loads(run("check", "--format", "json", "sub/bad2.py", cwd=project).stdout)
    assert {f["code"] for f in named} == {"AIP401", "AIP403"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[tool.aiperf-lint]\nselct = ["AIP4"]\n', "unknown key 'selct'"),
        ('[tool.aiperf-lint]\nselect = ["AIP777"]\n', "unknown rule code or prefix 'AIP777'"),
        ('[tool.aiperf-lint]\nselect = ["E501"]\n', "invalid rule selector 'E501'"),
        ("[tool.aiperf-lint\nselect = 1\n", "invalid TOML"),
        ('[tool.aiperf-lint]\nunsafe-fixes = "yes"\n', "unsafe-fixes must be true or false"),
    ],
)
def test_bad_config_is_a_clear_error(project, config, message):
    (project / "pyproject.toml").write_text(config)
    proc = run("check", cwd=project)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_gitignore_and_venv_are_skipped(project):
    (project / ".gitignore").write_text("generated/\n*_gen.py\n")
    (project / "generated").mkdir()
    (project / "generated" / "a.py").write_text(BAD)
    (project / "x_gen.py").write_text(BAD)
    (project / "myenv").mkdir()
    (project / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (project / "myenv" / "lib.py").write_text(BAD)
    findings = json.loads(run("check", "--format", "json", cwd=project).stdout)
    assert {Path(f["path"]).name for f in findings} == {"bad.py"}


def test_rules_and_rule_commands(project):
    table = run("rules", cwd=project)
    assert table.returncode == 0
    assert "AIP401  pandas-iterrows-loop" in table.stdout
    page = run("rule", "aip401", cwd=project)
    assert page.returncode == 0
    assert "## What it does" in page.stdout and "## Fix safety" in page.stdout
    unknown = run("rule", "AIP999", cwd=project)
    assert unknown.returncode == 2 and "unknown rule code" in unknown.stderr


def test_bad_jobs_value_is_a_usage_error(project):
    proc = run("check", "--jobs", "0", cwd=project)
    assert proc.returncode == 2
    assert "expected a positive integer" in proc.stderr


def test_parallel_jobs_give_the_same_output(project):
    for i in range(12):
        (project / f"f{i}.py").write_text(BAD)
    one = run("check", "--jobs", "1", "--format", "json", cwd=project)
    two = run("check", "--jobs", "2", "--format", "json", cwd=project)
    assert one.stdout == two.stdout
    assert len(json.loads(one.stdout)) == 26


def test_named_directory_inside_an_excluded_one_is_walked(project):
    # `aiperf-lint check .venv/lib/.../site-packages/pkg` must lint pkg even
    # though "site-packages" and ".venv" are default excludes.
    pkg = project / ".venv" / "lib" / "site-packages" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text(BAD)
    (pkg / "build").mkdir()
    (pkg / "build" / "gen.py").write_text(BAD)
    findings = json.loads(run("check", "--format", "json", str(pkg), cwd=project).stdout)
    assert {Path(f["path"]).name for f in findings} == {"mod.py"}


def test_a_file_named_twice_or_through_a_symlink_is_checked_once(project):
    (project / "link.py").symlink_to(project / "bad.py")
    proc = run("check", "bad.py", "./bad.py", "link.py", ".", "--format", "json", cwd=project)
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)
    assert len(findings) == 2
    assert {f["path"] for f in findings} == {"bad.py"}
