"""README "Using aiperf-lint next to ruff": `lint.external = ["AIP"]` keeps our noqa comments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOURCE = 'import pandas as pd\ndf = pd.DataFrame()\nfor i, row in df.iterrows():  # noqa: AIP401\n    df.loc[i, "t"] = row["a"] * 2  # noqa: PERF401, AIP403\n'


def _ruff_fix(tmp_path: Path, extra: str) -> str:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.ruff.lint]\nselect = ["RUF100", "RUF102"]\n{extra}', encoding="utf-8"
    )
    path = tmp_path / "train.py"
    path.write_text(SOURCE, encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--fix", "--no-cache", "train.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return path.read_text(encoding="utf-8")


def test_external_keeps_aip_noqa_comments(tmp_path):
    kept = _ruff_fix(tmp_path, 'external = ["AIP"]\n')
    assert "# noqa: AIP401" in kept and "AIP403" in kept


def test_without_external_ruff_drops_them(tmp_path):
    dropped = _ruff_fix(tmp_path, "")
    assert "AIP401" not in dropped and "AIP403" not in dropped
