"""The pre-commit hooks, run by real pre-commit against a snapshot of this checkout.

pre-commit pip-installs the snapshot into its own virtualenv (from PyPI: libcst,
setuptools), once per test session: PRE_COMMIT_HOME is a temporary directory
shared by this module. `pre-commit try-repo` would reinstall on every call (it
uses a throw-away store), so the tests use the equivalent `pre-commit run` with
a config pointing at the snapshot repository. Measured on the 2-core dev box
(heavily loaded by parallel work): about 40-50 s for the one install, 2-4 s per
hook run after it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aiperf_lint import api

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "aiperf_lint", "rules")
GIT_IDENTITY = ["-c", "user.name=aiperf-lint tests", "-c", "user.email=tests@aiperf-lint.invalid"]
BAD = textwrap.dedent(
    """\
    import pandas as pd
    df = pd.read_csv("sales.csv")
    for i, row in df.iterrows():
        df.loc[i, "total"] = row["price"] * row["qty"]
    """
)


def _git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory) -> tuple[Path, str]:
    """This checkout's working tree (the package and the hooks manifest) as a one-commit repo."""
    snapshot = tmp_path_factory.mktemp("hooks-repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in PACKAGE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, snapshot / name, ignore=ignore)
        else:
            shutil.copy2(source, snapshot / name)
    _git("init", "-q", cwd=snapshot)
    _git("add", "-A", cwd=snapshot)
    _git("commit", "-q", "-m", "snapshot", cwd=snapshot)
    return snapshot, _git("rev-parse", "HEAD", cwd=snapshot)


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _pre_commit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _notebook(source: str) -> str:
    document = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": source.splitlines(keepends=True),
            }
        ],
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def test_manifest_is_valid(pre_commit_home):
    manifest = str(ROOT / ".pre-commit-hooks.yaml")
    proc = _pre_commit("validate-manifest", manifest, cwd=ROOT, home=pre_commit_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_fails_fix_repairs_then_check_passes(tmp_path, hooks_repo, pre_commit_home):
    repo, sha = hooks_repo
    project = tmp_path / "project"
    project.mkdir()
    _git("init", "-q", cwd=project)
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {repo.as_posix()}\n  rev: {sha}\n  hooks:\n  - id: aiperf-lint-fix\n  - id: aiperf-lint\n",
        encoding="utf-8",
    )
    (project / "train.py").write_text(BAD, encoding="utf-8")
    (project / "explore.ipynb").write_text(_notebook(BAD), encoding="utf-8")
    (project / "notes.txt").write_text("for i, row in df.iterrows(): pass\n", encoding="utf-8")
    _git("add", "-A", cwd=project)

    check = _pre_commit("run", "aiperf-lint", "--all-files", cwd=project, home=pre_commit_home)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "train.py:3:15: AIP401" in check.stdout
    assert "explore.ipynb:cell 1:line 3:col 15: AIP401" in check.stdout
    assert "notes.txt" not in check.stdout

    fix = _pre_commit("run", "aiperf-lint-fix", "--all-files", cwd=project, home=pre_commit_home)
    assert fix.returncode == 1 and "files were modified by this hook" in fix.stdout, (
        fix.stdout + fix.stderr
    )
    assert (project / "train.py").read_text(encoding="utf-8") == api.fix_source(BAD)
    fixed_cell = json.loads((project / "explore.ipynb").read_text(encoding="utf-8"))["cells"][0][
        "source"
    ]
    assert "".join(fixed_cell) == api.fix_source(BAD)

    _git("add", "-A", cwd=project)
    again = _pre_commit("run", "--all-files", cwd=project, home=pre_commit_home)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("Passed") == 2
