"""Lint and fix the installed source of pandas, numpy and torch: thousands of
files no one here wrote. Zero crashes, zero internal errors, every fixed file
re-parses. The counts are printed (pytest -s, or in the CI log on failure)."""

from __future__ import annotations

import ast
import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from aiperf_lint import config, discovery, registry, runner


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


PACKAGES = [p for p in (_package_dir(n) for n in ("pandas", "numpy", "torch")) if p is not None]


@pytest.mark.skipif(
    len(PACKAGES) < 3, reason="needs pandas, numpy and torch installed (make test installs them)"
)
def test_lint_and_fix_installed_packages(capsys):
    settings = config.Settings(root=Path("/"), exclude=[])
    found = discovery.discover([str(p) for p in PACKAGES], settings, include_notebooks=False)
    assert len(found.files) > 3000
    options = runner.LintOptions(
        codes=registry.resolve(["ALL"]),
        settings=settings,
        fix=True,
        unsafe_fixes=True,
        write=False,
    )
    counts: Counter = Counter()
    internal, unparsable = [], []
    for result in runner.run(found.files, options, jobs=config.cpu_count()):
        counts["files"] += 1
        counts["parsed"] += result.parsed
        counts["findings"] += len(result.findings)
        counts["fixed files"] += result.fixed_text is not None
        counts["fixes"] += result.fixes_applied
        for error in result.errors:
            counts[f"{error.kind} errors"] += 1
            if error.kind == "internal":
                internal.append(error.one_line())
        if result.fixed_text is not None:
            try:
                ast.parse(result.fixed_text)
            except SyntaxError as exc:
                unparsable.append(f"{result.path}: {exc}")
    with capsys.disabled():
        print("\nreal-code run:", dict(sorted(counts.items())))
    assert not internal, internal[:10]
    assert not unparsable, unparsable[:10]
    assert counts["files"] == len(found.files)
