"""`check` (and `check --fix`) never imports or runs the code it lints.

Every file below would, if imported or run, write a sentinel file and kill
the process. They are linted and fixed from inside their own directory, where
names like `libcst.py` or `pandas.py` would shadow the linter's own imports if
the current directory were on sys.path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CALL = "scaler = torch.cuda.amp.GradScaler()"
FIXED_CALL = 'scaler = torch.amp.GradScaler("cuda")'
# Modules our process imports (or might) and names Python or tools run on their own.
SHADOWING_NAMES = [
    "libcst",
    "pandas",
    "numpy",
    "torch",
    "aiperf_lint_rules",
    "sitecustomize",
    "usercustomize",
    "conftest",
    "setup",
    "__main__",
    "tomllib",
    "json",
    "multiprocessing",
]


def hostile(sentinel: Path, name: str) -> str:
    return f"""\
import os
import torch
open({str(sentinel)!r}, "a").write("module-level code of {name} ran\\n")
os._exit(97)
{CALL}

if __name__ == "__main__":
    open({str(sentinel)!r}, "a").write("__main__ block of {name} ran\\n")
    raise SystemExit(98)
"""


def notebook(sentinel: Path) -> str:
    cell = f"import torch\nopen({str(sentinel)!r}, 'a').write('notebook ran')\n{CALL}\n"
    return json.dumps(
        {
            "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": cell}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


@pytest.fixture
def hostile_tree(tmp_path: Path) -> tuple[Path, Path]:
    sentinel = tmp_path / "SENTINEL"
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    for name in SHADOWING_NAMES:
        (project / f"{name}.py").write_text(hostile(sentinel, name))
    (project / "pkg" / "__init__.py").write_text(hostile(sentinel, "pkg"))
    (project / "analysis.ipynb").write_text(notebook(sentinel))
    return project, sentinel


def entry_points() -> list[list[str]]:
    """The installed console script (what users, pre-commit and the Action run)
    and `python -m aiperf_lint`, whose current directory lands on sys.path."""
    points = [[sys.executable, "-m", "aiperf_lint"]]
    script = Path(sys.executable).parent / "aiperf-lint"
    if script.exists():
        points.append([str(script)])
    return points


@pytest.mark.parametrize("entry", entry_points(), ids=lambda e: Path(e[-1]).name)
def test_check_and_fix_never_run_the_linted_code(hostile_tree, entry):
    project, sentinel = hostile_tree
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)
    runs = [["check", "--fix", "."]]  # lints every file, then fixes and re-lints it
    if entry[-1] == "aiperf_lint":
        runs.append(["check", "--diff", "."])
    for args in runs:
        proc = subprocess.run(
            [*entry, *args, "--no-cache"],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
        assert not sentinel.exists(), sentinel.read_text()
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stderr
    # the files were really processed: --fix rewrote every one of them
    for name in SHADOWING_NAMES:
        text = (project / f"{name}.py").read_text()
        assert FIXED_CALL in text and CALL not in text, name
    cells = json.loads((project / "analysis.ipynb").read_text())["cells"]
    assert FIXED_CALL in cells[0]["source"]
