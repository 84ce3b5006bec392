"""A crashing rule is contained to its file and reported as an internal error
(rule code, file, position, one-line cause; `--debug` adds the traceback),
never silently dropped, and the other rules and files are still checked.

The broken rules are injected into the real registry for the duration of a
test; the CLI's `main()` runs in-process with one job (no worker processes).
"""

from __future__ import annotations

import libcst as cst
import pytest

from aiperf_lint import cli, registry
from aiperf_lint.rule import Rule

GOOD = "import torch\nscaler = torch.cuda.amp.GradScaler()\n"
BROKEN_TRIGGER = "def work():\n    return crash_here(1)\n"


class CrashingRule(Rule):
    code = "AIP998"
    name = "test-crashing-rule"
    message = "never reported"
    triggers = (b"crash_here",)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "crash_here":
            raise ZeroDivisionError("deliberate failure\nsecond line is not shown")


class CrashingFixRule(Rule):
    """Reports with a fix whose replacement cannot be rendered."""

    code = "AIP997"
    name = "test-crashing-fix"
    message = "reported, fix broken"
    fix_kind = "safe"
    triggers = (b"bad_fix",)

    def visit_Call(self, node: cst.Call) -> None:
        from aiperf_lint.model import Fix

        if isinstance(node.func, cst.Name) and node.func.value == "bad_fix":
            self.report(node, fix=Fix("safe", {node: "not a node"}))


@pytest.fixture
def broken_registry(monkeypatch):
    rules = (*registry.all_rules(), CrashingRule, CrashingFixRule)
    monkeypatch.setattr(registry, "all_rules", lambda: rules)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["check", "--no-cache", "-j", "1", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_crash_is_reported_with_rule_file_and_position(tmp_path, capsys, broken_registry):
    (tmp_path / "a_good.py").write_text(GOOD)
    (tmp_path / "broken.py").write_text(GOOD + BROKEN_TRIGGER)
    (tmp_path / "z_good.py").write_text(GOOD)
    code, out, err = run_main(capsys, "--select", "AIP105,AIP998", str(tmp_path))
    assert code == 2
    assert err.splitlines() == [
        f"error: {tmp_path / 'broken.py'}:4:12: internal error in AIP998: "
        "ZeroDivisionError: deliberate failure"
    ]
    reported = {line.split(":")[0] for line in out.splitlines() if "AIP105" in line}
    # other files, and the other rules on the broken file, still report
    assert reported == {str(tmp_path / n) for n in ("a_good.py", "broken.py", "z_good.py")}


def test_debug_prints_the_traceback(tmp_path, capsys, broken_registry):
    (tmp_path / "broken.py").write_text(BROKEN_TRIGGER)
    code, _, err = run_main(capsys, "--select", "AIP998", "--debug", str(tmp_path))
    assert code == 2
    assert "internal error in AIP998" in err.splitlines()[0]
    assert "Traceback (most recent call last)" in err
    assert "in visit_Call" in err
    assert "second line is not shown" in err  # the full message is in the traceback only


def test_fix_mode_reports_the_crash_too(tmp_path, capsys, broken_registry):
    path = tmp_path / "broken.py"
    path.write_text(GOOD + BROKEN_TRIGGER)
    code, _, err = run_main(capsys, "--select", "AIP105,AIP998", "--fix", str(tmp_path))
    assert code == 2
    assert "internal error in AIP998" in err
    assert 'torch.amp.GradScaler("cuda")' in path.read_text()  # the other rule's fix applied


def test_a_broken_fix_is_dropped_not_applied(tmp_path, capsys, broken_registry):
    path = tmp_path / "bad_fix.py"
    source = "x = bad_fix(1)\n"
    path.write_text(source)
    code, out, _ = run_main(capsys, "--select", "AIP997", "--fix", str(tmp_path))
    assert code == 1
    assert "AIP997" in out and "fix unavailable" in out
    assert path.read_text() == source
