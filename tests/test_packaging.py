"""The wheel ships every package (rules, server, verify) and the core stays light."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_all_packages(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("aiperf_lint-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.rsplit("/", 1)[0] for n in names if n.endswith(".py")}
    assert {
        "aiperf_lint",
        "aiperf_lint/rules",
        "aiperf_lint/server",
        "aiperf_lint/verify",
    } <= packages
    rule_modules = [n for n in names if n.startswith("aiperf_lint/rules/aip")]
    assert len(rule_modules) == len(list((ROOT / "rules").glob("aip*.py")))
    # every subpackage on disk is shipped
    on_disk = {
        p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "aiperf_lint").rglob("__init__.py")
    }
    assert on_disk <= packages


def test_core_imports_no_heavy_libraries():
    code = (
        "import sys, aiperf_lint.cli, aiperf_lint.registry as r; r.all_rules();"
        "import aiperf_lint.api;"
        "bad = [m for m in ('numpy', 'pandas', 'torch', 'matplotlib') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
