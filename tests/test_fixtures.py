"""The fixture-pair contract: before.py reported, after.py clean, after == --fix(before)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from aiperf_lint import api, registry

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PAIRS = sorted(p for p in FIXTURES.iterdir() if (p / "pair.toml").exists())


def _meta(pair: Path) -> dict:
    return tomllib.loads((pair / "pair.toml").read_text())


FIXABLE = [p for p in PAIRS if _meta(p)["fix"] != "none"]


def test_there_are_pairs():
    assert len(PAIRS) >= 3


def test_every_rule_has_a_fixture_pair():
    covered = {_meta(p)["rule"] for p in PAIRS}
    missing = [r.code for r in registry.all_rules() if r.code not in covered]
    assert not missing, f"rules without a fixture pair: {missing}"


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_pair_metadata(pair):
    meta = _meta(pair)
    assert pair.name.startswith(meta["rule"] + "_")
    assert registry.get_rule(meta["rule"]) is not None
    assert meta["fix"] in {"safe", "unsafe", "none"}
    assert {"small", "default"} <= set(meta["sizes"])
    assert meta["claim"]["metric"] in {"time", "memory"}
    for name in ("before.py", "after.py"):
        source = (pair / name).read_text()
        assert "def setup(size, device)" in source and "def run(inputs)" in source


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.name)
def test_before_reported_after_clean(pair):
    code = _meta(pair)["rule"]
    before = api.check_source((pair / "before.py").read_text(), select=["ALL"])
    assert code in {f.code for f in before}
    after = api.check_source((pair / "after.py").read_text(), select=["ALL"])
    assert after == [], [f"{f.code} {f.line}: {f.message}" for f in after]


@pytest.mark.parametrize("pair", FIXABLE, ids=lambda p: p.name)
def test_after_is_exactly_the_fix(pair):
    meta = _meta(pair)
    before = (pair / "before.py").read_text()
    fixed = api.fix_source(before, unsafe=meta["fix"] == "unsafe", select=["ALL"])
    assert fixed == (pair / "after.py").read_text()


def test_cli_json_reports_every_before_and_no_after():
    proc = subprocess.run(
        [sys.executable, "-m", "aiperf_lint", "check", "--format", "json", "fixtures/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)
    reported = {Path(f["path"]).parent.name for f in findings if f["path"].endswith("before.py")}
    assert reported == {p.name for p in PAIRS}
    assert not [f for f in findings if f["path"].endswith("after.py")]
