"""Changed-lines mode, the GitHub review payload, baselines and --add-noqa,
all on real temporary git repositories (no mocked git)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

from aiperf_lint import api

ROOT = Path(__file__).resolve().parent.parent

OLD = textwrap.dedent(
    """\
    import pandas as pd

    df = pd.read_csv("x.csv")
    for i, row in df.iterrows():
        df.loc[i, "total"] = row["price"] * row["qty"]
    """
)
NEW_FINDINGS = textwrap.dedent(
    """\

    def bmi(people):
        people["bmi"] = people.apply(lambda r: r["weight"] / r["height"] ** 2, axis=1)
        return people


    def scale(frame):
        for j in range(len(frame)):
            frame.iat[j, 0] = frame.iat[j, 0] * 2
    """
)


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiperf_lint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    # pin the rules so that rules added later do not change these expectations
    (tmp_path / "pyproject.toml").write_text(
        '[tool.aiperf-lint]\nselect = ["AIP401", "AIP402", "AIP403"]\n'
    )
    (tmp_path / "app.py").write_text(OLD)
    (tmp_path / "gone.py").write_text(OLD)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "feature")
    (tmp_path / "app.py").write_text(OLD + NEW_FINDINGS)
    git(tmp_path, "rm", "-q", "gone.py")
    git(tmp_path, "commit", "-qam", "head: two new findings")
    return tmp_path


def test_diff_base_reports_only_changed_lines(repo):
    proc = cli(repo, "check", "--diff-base", "main", "--format", "json")
    findings = json.loads(proc.stdout)
    assert sorted((f["code"], f["line"]) for f in findings) == [("AIP402", 8), ("AIP403", 14)]
    # the whole file still has the old findings
    everything = json.loads(cli(repo, "check", "--format", "json").stdout)
    assert {f["code"] for f in everything} >= {"AIP401", "AIP402", "AIP403"}


def test_diff_base_includes_uncommitted_and_untracked_changes(repo):
    (repo / "app.py").write_text(
        OLD + NEW_FINDINGS + "\nx = pd.read_csv('y').apply(lambda r: r['a'] + 1, axis=1)\n"
    )
    (repo / "new.py").write_text(OLD)
    findings = json.loads(cli(repo, "check", "--diff-base", "main", "--format", "json").stdout)
    got = sorted((Path(f["path"]).name, f["code"], f["line"]) for f in findings)
    assert ("app.py", "AIP402", 16) in got
    assert ("new.py", "AIP401", 4) in got and ("new.py", "AIP403", 5) in got
    assert ("app.py", "AIP401", 4) not in got


def test_diff_base_follows_renames(tmp_path):
    filler = "".join(f"CONSTANT_{i} = {i}\n" for i in range(40))
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.aiperf-lint]\nselect = ["AIP401", "AIP402", "AIP403"]\n'
    )
    (tmp_path / "app.py").write_text(OLD + filler)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "feature")
    git(tmp_path, "mv", "app.py", "renamed.py")
    (tmp_path / "renamed.py").write_text(OLD + filler + NEW_FINDINGS)
    git(tmp_path, "commit", "-qam", "rename and extend")
    findings = json.loads(cli(tmp_path, "check", "--diff-base", "main", "--format", "json").stdout)
    # only the added lines of the renamed file, not its old findings (lines 4-5)
    assert sorted((Path(f["path"]).name, f["code"]) for f in findings) == [
        ("renamed.py", "AIP402"),
        ("renamed.py", "AIP403"),
    ]


def test_diff_base_errors(repo, tmp_path_factory):
    bad_ref = cli(repo, "check", "--diff-base", "no-such-branch")
    assert bad_ref.returncode == 2 and "unknown git ref 'no-such-branch'" in bad_ref.stderr
    outside = tmp_path_factory.mktemp("plain")
    (outside / "a.py").write_text(OLD)
    not_repo = cli(outside, "check", "--diff-base", "main")
    assert not_repo.returncode == 2 and "needs a git repository" in not_repo.stderr
    assert "Traceback" not in bad_ref.stderr + not_repo.stderr


def test_diff_base_with_fix_only_fixes_changed_lines(repo):
    (repo / "app.py").write_text(OLD + NEW_FINDINGS)
    proc = cli(repo, "check", "--diff-base", "main", "--fix")
    text = (repo / "app.py").read_text()
    assert 'people["bmi"] = people["weight"] / people["height"] ** 2' in text  # new finding fixed
    assert "for i, row in df.iterrows():" in text  # old finding untouched
    assert proc.returncode == 1  # AIP403 on a changed line remains (no fix)


def test_github_review_payload(repo):
    proc = cli(repo, "check", "--diff-base", "main", "--format", "github-review")
    review = json.loads(proc.stdout)
    assert review["commit_id"] == git(repo, "rev-parse", "HEAD").strip()
    assert review["event"] == "COMMENT"
    assert (
        "AIP402" in review["body"] and "AIP403" in review["body"] and "AIP401" not in review["body"]
    )
    comments = {c["line"]: c for c in review["comments"]}
    assert set(comments) == {8, 14}
    assert all(c["path"] == "app.py" and c["side"] == "RIGHT" for c in comments.values())
    suggestion = comments[8]["body"]
    assert "```suggestion\n" in suggestion
    assert '    people["bmi"] = people["weight"] / people["height"] ** 2' in suggestion
    assert "```suggestion" not in comments[14]["body"]  # no fix for AIP403


def _apply_review(text: str, comments: list[dict]) -> str:
    """Apply suggestion and diff blocks bottom-up, as a reviewer clicking them would."""
    lines = text.splitlines(keepends=True)
    for comment in sorted(comments, key=lambda c: -c["line"]):
        body = comment["body"]
        match = re.search(r"```suggestion\n(.*?)```", body, re.S)
        if match:
            start = comment.get("start_line", comment["line"])
            new = match.group(1)
            lines[start - 1 : comment["line"]] = new.splitlines(keepends=True)
            continue
        match = re.search(r"```diff\n(.*?)\n```", body, re.S)
        if match:
            lines = _apply_unified(lines, match.group(1))
    return "".join(lines)


def _apply_unified(lines: list[str], diff: str) -> list[str]:
    hunks = re.split(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@.*$\n?", diff, flags=re.M)
    out = list(lines)
    pieces = []
    for i in range(1, len(hunks), 3):
        start = int(hunks[i])
        count = int(hunks[i + 1]) if hunks[i + 1] is not None else 1
        body = hunks[i + 2].splitlines()
        new = [ln[1:] + "\n" for ln in body if ln.startswith((" ", "+"))]
        pieces.append((start, count, new))
    for start, count, new in sorted(pieces, reverse=True):
        first = start - 1 if count else start
        out[first : first + count] = new
    return out


FIXABLE_PAIRS = [
    p
    for p in sorted((ROOT / "fixtures").glob("AIP*"))
    if (p / "pair.toml").exists() and tomllib.loads((p / "pair.toml").read_text())["fix"] != "none"
]


@pytest.mark.parametrize("pair", FIXABLE_PAIRS, ids=lambda p: p.name)
def test_review_suggestions_round_trip_every_fixable_pair(pair, tmp_path):
    meta = tomllib.loads((pair / "pair.toml").read_text())
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "pyproject.toml").write_text('[tool.aiperf-lint]\nselect = ["ALL"]\n')
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    before = (pair / "before.py").read_text()
    (tmp_path / "before.py").write_text(before)
    args = ["check", "--diff-base", "main", "--format", "github-review", "--select", meta["rule"]]
    if meta["fix"] == "unsafe":
        args.append("--unsafe-fixes")
    review = json.loads(cli(tmp_path, *args).stdout)
    applied = _apply_review(before, review["comments"])
    expected = api.fix_source(before, unsafe=meta["fix"] == "unsafe", select=[meta["rule"]])
    assert applied == expected


def test_baseline_hides_old_findings_and_reports_new_ones(repo, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert cli(repo, "check", "--write-baseline", str(baseline)).returncode == 0
    data = json.loads(baseline.read_text())
    assert data["version"] == 1 and len(data["findings"]) == 4
    assert all("line" not in e for e in data["findings"])
    assert baseline.read_text() == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert cli(repo, "check", "--baseline", str(baseline)).returncode == 0
    # edits elsewhere in the file (lines shift) do not resurrect old findings
    (repo / "app.py").write_text("# header\n\n" + (repo / "app.py").read_text())
    assert cli(repo, "check", "--baseline", str(baseline)).returncode == 0
    # a second copy of the same bad statement is new
    (repo / "app.py").write_text((repo / "app.py").read_text() + "\n" + OLD.split("\n", 3)[3])
    proc = cli(repo, "check", "--baseline", str(baseline), "--format", "json")
    new = json.loads(proc.stdout)
    assert proc.returncode == 1 and {f["code"] for f in new} == {"AIP401", "AIP403"}


def test_baseline_show_stale(repo, tmp_path):
    baseline = tmp_path / "baseline.json"
    cli(repo, "check", "--write-baseline", str(baseline))
    (repo / "app.py").write_text(OLD)  # the two newer findings are gone
    proc = cli(repo, "check", "--baseline", str(baseline), "--show-stale")
    assert proc.returncode == 0
    stale = [ln for ln in proc.stderr.splitlines() if ln.startswith("stale baseline entry")]
    assert len(stale) == 2 and any("AIP402" in ln for ln in stale)


def test_bad_baseline_file_is_a_clear_error(repo, tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    proc = cli(repo, "check", "--baseline", str(bad))
    assert proc.returncode == 2 and "baseline is not valid JSON" in proc.stderr


def test_add_noqa(repo):
    src = (repo / "app.py").read_text()
    src = src.replace(
        'df = pd.read_csv("x.csv")',
        'df = pd.read_csv("x.csv")\nDOC = """\nfor r in df.iterrows(): pass\n"""',
    )
    src = src.replace(
        "frame.iat[j, 0] = frame.iat[j, 0] * 2",
        "frame.iat[j, 0] = frame.iat[j, 0] * 2  # noqa: AIP999",
    )
    (repo / "app.py").write_text(src)
    before = cli(repo, "check", "--format", "json")
    assert before.returncode == 1
    proc = cli(repo, "check", "--add-noqa")
    assert proc.returncode == 0, proc.stderr
    text = (repo / "app.py").read_text()
    assert "for i, row in df.iterrows():  # noqa: AIP401" in text
    assert "# noqa: AIP999, AIP403" in text  # merged into the existing comment
    assert cli(repo, "check").returncode == 0
    # idempotent, and nothing else changed
    assert cli(repo, "check", "--add-noqa").returncode == 0
    assert (repo / "app.py").read_text() == text
    # removing what --add-noqa added gives back the original bytes
    restored = text.replace("# noqa: AIP999, AIP403", "# noqa: AIP999")
    restored = re.sub(r"  # noqa: AIP4\d\d(?:, AIP4\d\d)*$", "", restored, flags=re.M)
    assert restored == src


def test_add_noqa_on_a_multiline_string_statement(tmp_path):
    src = textwrap.dedent(
        '''\
        import pandas as pd
        df = pd.read_csv("x.csv")
        out = df.apply(lambda r: r["a"] * 2 if """
        """ else 0, axis=1)
        '''
    )
    (tmp_path / "m.py").write_text(src)
    assert cli(tmp_path, "check", "--add-noqa").returncode == 0
    assert cli(tmp_path, "check").returncode == 0


def test_action_review_mode_runs_the_review_command(repo, tmp_path):
    """The action's review step, run here as bash with a stand-in `gh` that
    records its arguments (gh itself is never called)."""
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in action["runs"]["steps"] if s.get("name") == "Review")
    assert "inputs.mode == 'review'" in step["if"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text('#!/bin/sh\necho "$@" > "$GH_LOG"\n')
    (bin_dir / "gh").chmod(0o755)
    (bin_dir / "aiperf-lint").write_text(f'#!/bin/sh\nexec {sys.executable} -m aiperf_lint "$@"\n')
    (bin_dir / "aiperf-lint").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GH_LOG": str(tmp_path / "gh.log"),
        "GITHUB_REPOSITORY": "me/proj",
        "AIPERF_LINT_PATHS": ".",
        "AIPERF_LINT_ARGS": "",
        "AIPERF_LINT_BASE": "main",
        "AIPERF_LINT_MAX": "50",
        "AIPERF_LINT_PR": "7",
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, check=True, timeout=120)
    review = json.loads((repo / "aiperf-lint-review.json").read_text())
    assert len(review["comments"]) == 2
    assert (tmp_path / "gh.log").read_text().split() == [
        "api", "--method", "POST", "repos/me/proj/pulls/7/reviews", "--input", "aiperf-lint-review.json",
    ]  # fmt: skip


def test_add_noqa_in_a_notebook_keeps_outputs(tmp_path):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# title\n"]},
        {
            "cell_type": "code",
            "execution_count": 1,
            "metadata": {"tags": ["keep"]},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": ["hi\n"]}],
            "source": [
                "%matplotlib inline\n",
                "import pandas as pd\n",
                "df = pd.read_csv('x.csv')\n",
            ],
        },
        {
            "cell_type": "code",
            "execution_count": 2,
            "metadata": {},
            "outputs": [],
            "source": ["for i, row in df.iterrows():\n", "    df.loc[i, 't'] = row['a'] * 2\n"],
        },
    ]
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb, indent=1) + "\n")
    assert cli(tmp_path, "check", "nb.ipynb").returncode == 1
    proc = cli(tmp_path, "check", "--add-noqa", "nb.ipynb")
    assert proc.returncode == 0, proc.stderr
    assert cli(tmp_path, "check", "nb.ipynb").returncode == 0
    after = json.loads(path.read_text())
    assert after["cells"][1]["outputs"] == cells[1]["outputs"]
    assert after["cells"][1]["metadata"] == {"tags": ["keep"]}
    assert after["cells"][2]["source"][0] == "for i, row in df.iterrows():  # noqa: AIP401\n"
