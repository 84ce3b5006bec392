"""The result cache: what invalidates it, what bypasses it, and that it never lies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aiperf_lint import cache, cli, engine, runner

ITERROWS = textwrap.dedent(
    """\
    import pandas as pd
    df = pd.read_csv("sales.csv")
    for i, row in df.iterrows():
        df.loc[i, "total"] = row["price"] * row["qty"] + TAX
    """
)
CLEAN = "import pandas as pd\ndf = pd.read_csv('a.csv')\nprint(df.iterrows)\n"
OLD = time.time() - 3600  # an mtime well outside the racy window


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.aiperf-lint]\n")
    (tmp_path / "bad.py").write_text(ITERROWS)
    (tmp_path / "good.py").write_text(CLEAN)
    for name in ("bad.py", "good.py"):
        os.utime(tmp_path / name, (OLD, OLD))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def analyses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the engine really analysed (the run is in-process with -j1)."""
    seen: list[str] = []
    original = engine.analyse

    def counting(text, rules, path, module=None):
        seen.append(Path(path).name)
        return original(text, rules, path, module)

    monkeypatch.setattr(engine, "analyse", counting)
    return seen


def lint(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["check", "-j", "1", *args])
    return code, capsys.readouterr().out


def stat_index(project: Path) -> dict:
    index: dict = {}
    for path in project.glob(".aiperf_lint_cache/*/stat-index.json"):
        index.update(json.loads(path.read_text()))
    return index


def test_second_run_is_served_from_the_cache(project, analyses, capsys):
    first = lint(capsys, "bad.py", "good.py")
    assert sorted(analyses) == ["bad.py", "good.py"]
    analyses.clear()
    second = lint(capsys, "bad.py", "good.py")
    assert analyses == []
    assert second == first
    assert first[0] == cli.EXIT_FINDINGS and "AIP401" in first[1]


def test_changed_content_is_linted_again(project, analyses, capsys):
    lint(capsys, "bad.py", "good.py")
    analyses.clear()
    (project / "bad.py").write_text(CLEAN)
    code, out = lint(capsys, "bad.py", "good.py")
    assert analyses == ["bad.py"]
    assert code == cli.EXIT_OK and "AIP401" not in out


def test_same_size_same_mtime_rewrite_is_not_missed(project, analyses, capsys):
    """The stat index also keys on ctime and inode: restoring mtime does not fool it."""
    lint(capsys, "bad.py")
    assert "bad.py" in stat_index(project)
    swapped = ITERROWS.replace("price", "PRICE")
    assert len(swapped) == len(ITERROWS)
    (project / "bad.py").write_text(swapped)
    os.utime(project / "bad.py", (OLD, OLD))
    analyses.clear()
    _, out = lint(capsys, "bad.py")
    assert analyses == ["bad.py"]
    assert "AIP401" in out


def test_recently_modified_file_is_not_trusted_by_stat(project, capsys):
    (project / "fresh.py").write_text(ITERROWS)  # mtime: now (racy)
    lint(capsys, "fresh.py", "bad.py")
    assert "fresh.py" not in stat_index(project)
    assert "bad.py" in stat_index(project)


def test_config_change_invalidates(project, analyses, capsys):
    lint(capsys, "bad.py")
    analyses.clear()
    (project / "pyproject.toml").write_text(
        '[tool.aiperf-lint]\nper-file-ignores = { "other.py" = ["AIP401"] }\n'
    )
    lint(capsys, "bad.py")
    assert analyses == ["bad.py"]


def test_rule_selection_change_invalidates(project, analyses, capsys):
    lint(capsys, "bad.py")
    analyses.clear()
    _, out = lint(capsys, "--select", "AIP403", "bad.py")
    assert analyses == ["bad.py"] and "AIP401" not in out
    analyses.clear()
    _, out = lint(capsys, "bad.py")
    assert analyses == [] and "AIP401" in out  # the first selection is still cached


def test_tool_version_change_invalidates(project, analyses, capsys, monkeypatch):
    lint(capsys, "bad.py")
    analyses.clear()
    monkeypatch.setattr(cache, "__version__", "999.0")
    lint(capsys, "bad.py")
    assert analyses == ["bad.py"]


def test_rule_source_change_changes_the_namespace(tmp_path, monkeypatch):
    import aiperf_lint.rules

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "aip999_example.py").write_text("X = 1\n")
    monkeypatch.setattr(aiperf_lint.rules, "__path__", [str(rules_dir)])
    before = cache.code_digest()
    (rules_dir / "aip999_example.py").write_text("X = 2\n")
    assert cache.code_digest() != before


def test_no_cache_bypasses_reading_and_writing(project, analyses, capsys):
    lint(capsys, "--no-cache", "bad.py")
    lint(capsys, "--no-cache", "bad.py")
    assert analyses == ["bad.py", "bad.py"]
    assert not (project / ".aiperf_lint_cache").exists()


def test_cache_dir_option_and_gitignore(project, capsys):
    lint(capsys, "--cache-dir", "elsewhere", "bad.py")
    assert not (project / ".aiperf_lint_cache").exists()
    gitignore = project / "elsewhere" / ".gitignore"
    assert gitignore.read_text().splitlines()[-1] == "*"


def test_default_cache_dir_is_gitignored(project, capsys):
    lint(capsys, "bad.py")
    assert (project / ".aiperf_lint_cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (project / ".aiperf_lint_cache" / "CACHEDIR.TAG").exists()


def test_corrupt_entries_are_ignored(project, analyses, capsys):
    first = lint(capsys, "bad.py", "good.py")
    for entry in project.glob(".aiperf_lint_cache/*/*.json"):
        entry.write_text('{"path": "bad.py", "findings": [{"code": ')  # torn / garbage
    analyses.clear()
    assert lint(capsys, "bad.py", "good.py") == first
    assert sorted(analyses) == ["bad.py", "good.py"]


def test_fix_does_not_use_cached_findings(project, capsys):
    lint(capsys, "bad.py")
    lint(capsys, "--fix", "bad.py")
    assert "iterrows" not in (project / "bad.py").read_text()
    code, out = lint(capsys, "bad.py")
    assert code == cli.EXIT_OK, out


def test_fix_skips_files_cached_as_clean(project, analyses, capsys):
    lint(capsys, "good.py")
    analyses.clear()
    lint(capsys, "--fix", "good.py")
    assert analyses == []


def test_concurrent_runs_share_the_cache_safely(project):
    files = []
    for i in range(12):
        path = project / f"m{i}.py"
        path.write_text(ITERROWS.replace("total", f"total{i}"))
        os.utime(path, (OLD, OLD))
        files.append(path.name)
    command = [sys.executable, "-m", "aiperf_lint", "check", "-j", "1", *files]
    procs = [
        subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [cli.EXIT_FINDINGS] * 2
    assert outputs[0] == outputs[1] and outputs[0].count("AIP401") == 12
    for entry in project.glob(".aiperf_lint_cache/*/*.json"):
        json.loads(entry.read_text())  # every entry whole
    assert not list(project.glob(".aiperf_lint_cache/*/.tmp-*"))
    again = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    assert again.stdout == outputs[0]


def test_parallel_results_keep_file_order(project, capsys):
    names = []
    for i in range(10):
        path = project / f"p{i}.py"
        path.write_text(ITERROWS * (10 - i))  # biggest first in the pool
        names.append(path.name)
    options = runner.LintOptions(codes=frozenset({"AIP401"}), settings=cli.config.load_settings())
    results = list(runner.run([Path(n) for n in names], options, jobs=2))
    assert [r.path for r in results] == names
    assert [len(r.findings) for r in results] == [10 - i for i in range(10)]
