"""End-to-end tests of `aiperf-lint verify` on the test pairs in tests/verify_pairs/.

Tiny sizes, 3 repeats and a short --min-time keep the whole file to a few seconds;
these test the machinery and the verdicts, not the speed of this machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from aiperf_lint import cli
from aiperf_lint.verify import load_results, machine

PAIRS = Path(__file__).parent / "verify_pairs"
FAST = ["--device", "cpu", "--size", "small", "--repeat", "3", "--min-time", "0.002"]
# For tests of the machinery, not of speed: this machine may be busy (CI, parallel jobs).
MACHINERY = [*FAST, "--check-only"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def verify(*args: str) -> tuple[int, str, str]:
    """Run `aiperf-lint verify ARGS` in-process (it spawns its own children)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["verify", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> dict:
    """One JSON run over every test pair, with a report directory."""
    report_dir = tmp_path_factory.mktemp("report")
    code, out, err = verify(str(PAIRS), *FAST, "--format", "json", "--report", str(report_dir))
    return {
        "code": code,
        "document": json.loads(out),
        "stderr": err,
        "report": report_dir,
        "by_pair": {entry["pair"]: entry for entry in json.loads(out)["pairs"]},
    }


# -- the JSON evidence document -------------------------------------------------------

ENTRY_SHAPE = {
    "pair": str,
    "rule": str,
    "path": str,
    "summary": str,
    "device": str,
    "size_label": str,
    "size": int,
    "date": str,
    "claim": {"metric": str, "min_speedup": float, "devices": list, "claimed_here": bool},
    "status": str,
    "verdict": str,
    "passed": bool,
    "note": str,
    "fix_match": str,
    "fix_note": str,
    "equivalence": {"checked": bool},
}
TIME_SHAPE = {
    "repeats": int,
    "ratio_of_medians": float,
    "paired_ratios": list,
    "paired": {"median": float, "q1": float, "q3": float, "iqr": float},
    "ci95": list,
}
VARIANT_SHAPE = {
    "raw_s": list,
    "calls_per_measurement": int,
    "setup_s": float,
    "first_call_s": float,
    "median_s": float,
    "q1_s": float,
    "q3_s": float,
    "iqr_s": float,
}
DOCUMENT_SHAPE = {
    "schema_version": int,
    "tool": str,
    "date": str,
    "command": list,
    "machine": {
        "platform": str,
        "cpu_model": str,
        "cpu_count": int,
        "python": str,
        "libraries": dict,
        "device": str,
        "device_name": str,
    },
    "settings": {"size": str, "sweep": bool, "repeat": int, "check_only": bool},
    "summary": {"pairs": int, "passed": int, "exit_code": int, "measured": int, "skipped": int},
    "pairs": list,
}


def assert_shape(value, shape, where="document"):
    for key, expected in shape.items():
        assert key in value, f"{where}: missing {key!r}"
        if isinstance(expected, dict):
            assert_shape(value[key], expected, f"{where}.{key}")
        else:
            assert isinstance(value[key], expected), f"{where}.{key}: {type(value[key]).__name__}"


def test_json_document_has_the_versioned_schema(full_run):
    document = full_run["document"]
    assert_shape(document, DOCUMENT_SHAPE)
    assert document["schema_version"] == 1
    assert document["command"][:2] == ["aiperf-lint", "verify"]
    assert document["machine"]["libraries"]["numpy"]  # versions of the optional extras
    for entry in document["pairs"]:
        assert_shape(entry, ENTRY_SHAPE, entry["pair"])


def test_good_pair_is_equivalent_and_faster_end_to_end(full_run):
    entry = full_run["by_pair"]["TST001_list_to_set"]
    assert entry["status"] == "measured"
    assert entry["equivalence"] == {"checked": True, "equal": True, "message": None}
    assert entry["verdict"] == "faster" and entry["passed"]
    timing = entry["time"]
    assert_shape(timing, TIME_SHAPE, "time")
    for variant in ("before", "after"):
        assert_shape(timing[variant], VARIANT_SHAPE, variant)
        assert len(timing[variant]["raw_s"]) == timing["repeats"] == 3
    low, high = timing["ci95"]
    assert low <= timing["paired"]["median"] <= high
    assert low > 1.5  # ~40x: a set beats 300 list scans far beyond the claimed 1.5x
    assert entry["memory"]["measure"] == "peak_rss_mib"


def test_float_results_that_differ_in_the_last_bit_are_equivalent(full_run):
    entry = full_run["by_pair"]["TST006_float_ulp"]
    assert entry["equivalence"]["equal"] is True, entry["note"]


def test_different_results_fail_loudly_and_are_not_timed(full_run):
    entry = full_run["by_pair"]["TST002_wrong_result"]
    assert entry["status"] == "different"
    assert entry["verdict"] == "FAILED: results differ"
    assert not entry["passed"]
    assert entry["equivalence"]["message"] == "result: 29 vs 30"
    assert "return different results" in entry["note"]
    assert entry["time"] is None


def test_crash_gives_one_line_error_with_the_failing_line(full_run):
    entry = full_run["by_pair"]["TST003_crash"]
    assert entry["status"] == "error" and not entry["passed"]
    assert entry["error"] == (
        "after.py: run raised ZeroDivisionError: division by zero (after.py:7 in run)"
    )


def test_timeout_is_reported_and_the_child_is_stopped(full_run):
    entry = full_run["by_pair"]["TST004_timeout"]
    assert entry["status"] == "error"
    assert entry["error"] == "before.py: timed out after 2 s (timeout_s) during first call"


def test_missing_run_function_is_a_clear_error(full_run):
    entry = full_run["by_pair"]["TST008_no_run"]
    assert entry["error"] == "after.py: after.py defines no run() function"


def test_cuda_pair_is_skipped_on_cpu_never_run(full_run):
    entry = full_run["by_pair"]["TST005_needs_cuda"]
    assert entry["status"] == "skipped"
    assert entry["verdict"] == "skipped: needs CUDA"
    assert entry["passed"] and entry["time"] is None and entry["memory"] is None


def test_memory_claim_is_judged_on_peak_memory(full_run):
    entry = full_run["by_pair"]["TST007_memory_stream"]
    memory = entry["memory"]
    assert memory["before_mib"] > 8  # 200,000 short strings held in a list
    assert memory["after_mib"] < 1
    assert entry["verdict"] == "less memory" and entry["passed"]


def test_broken_pairs_fail_the_run_but_every_pair_still_ran(full_run):
    assert full_run["code"] == 1
    summary = full_run["document"]["summary"]
    assert summary["pairs"] == len(list(PAIRS.glob("*/pair.toml")))
    assert summary["exit_code"] == 1
    assert summary["error"] == 3 and summary["different"] == 1 and summary["skipped"] == 1
    no_gain = full_run["by_pair"]["TST009_no_gain"]
    assert not no_gain["passed"]
    assert no_gain["verdict"] in ("no significant gain", "slower")  # identical code: noise


# -- reports ---------------------------------------------------------------------------


def test_report_dir_has_json_markdown_and_png(full_run):
    report = full_run["report"]
    assert json.loads((report / "results.json").read_text()) == full_run["document"]
    markdown = (report / "results.md").read_text()
    assert markdown.startswith("Measured by `aiperf-lint verify ")
    assert " on CPU (" in markdown.splitlines()[0]
    assert "| rule | pair | device | size | before | after | speed-up [95% CI] |" in markdown
    assert "| TST001 | TST001_list_to_set | cpu | small (300) |" in markdown
    assert (
        "| TST005 | TST005_needs_cuda | cpu | small (256) | - | - | - | - | n.a. | skipped: needs CUDA |"
        in markdown
    )
    assert "FAILED: results differ" in markdown
    assert "- TST003_crash (100): after.py: run raised ZeroDivisionError" in markdown
    assert_real_png(report / "chart.png")


def assert_real_png(path: Path) -> None:
    """A PNG that decodes to a sizeable image with many colours: a chart, not a blank."""
    image_module = pytest.importorskip("matplotlib.image")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = image_module.imread(path)
    height, width = pixels.shape[:2]
    assert height > 200 and width > 400
    colours = {tuple(p) for p in pixels.reshape(-1, pixels.shape[-1])[::7].round(2).tolist()}
    assert len(colours) > 20
    assert pixels.std() > 0.05


def test_text_table_and_markdown_format(tmp_path):
    code, out, err = verify(
        str(PAIRS / "TST001_list_to_set"), str(PAIRS / "TST005_needs_cuda"), *MACHINERY
    )
    assert code == 0, out + err
    header, rule_line, first, second = out.splitlines()[:4]
    assert header.split() == [
        *("rule", "pair", "device", "size", "before", "after"),
        *("speed-up", "[95%", "CI]", "memory", "MiB", "fix", "verdict"),
    ]
    assert set(rule_line.replace(" ", "")) == {"-"}
    assert re.fullmatch(
        r"TST001  TST001_list_to_set  cpu     small \(300\)  [0-9.]+ .s +[0-9.]+ .s +"
        r"[0-9.,]+x \[[0-9.,]+x\.\.[0-9.,]+x\] +[0-9.]+ -> [0-9.]+ +n\.a\.  \S.*",
        first,
    ), first
    assert second.endswith("skipped: needs CUDA")
    assert "2 measurement(s) on CPU" in out
    assert out.rstrip().endswith("all passed (--check-only: speed-ups measured, not judged)")

    code, out, _ = verify(str(PAIRS / "TST001_list_to_set"), *MACHINERY, "--format", "markdown")
    lines = out.splitlines()
    assert lines[2].startswith("| rule | pair |") and lines[3].startswith("| --- |")
    assert lines[4].startswith("| TST001 | TST001_list_to_set | cpu | small (300) |")
    assert lines[4].count(" | ") == 9 and "| n.a. |" in lines[4]
    assert lines[0].startswith("Measured by `aiperf-lint verify ")
    assert lines[0].endswith("(--check-only: speed-ups measured, not judged).")


def test_sweep_writes_a_time_vs_size_plot(tmp_path):
    code, out, _ = verify(
        str(PAIRS / "TST001_list_to_set"), *MACHINERY, "--sweep", "--report", str(tmp_path)
    )
    assert code == 0
    sizes = [line.split()[3] for line in out.splitlines()[2:5]]
    assert sizes == ["50", "200", "800"]
    assert_real_png(tmp_path / "sweep-TST001_list_to_set.png")


def test_check_only_measures_but_never_fails_on_speed():
    pair = str(PAIRS / "TST009_no_gain")
    code, out, _ = verify(pair, *FAST)
    assert code == 1 and "(claimed >= 4x)" in out
    code, out, _ = verify(pair, "--device", "cpu", "--size", "small", "--check-only")
    assert code == 0
    assert "not judged" in out


def test_check_only_still_fails_on_different_results():
    code, out, _ = verify(str(PAIRS / "TST002_wrong_result"), "--device", "cpu", "--check-only")
    assert code == 1 and "FAILED: results differ" in out


def test_rule_filter_selects_pairs_by_code_or_prefix():
    code, out, _ = verify(str(PAIRS), *MACHINERY, "--rule", "TST001,tst006")
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()[2:4]} == {"TST001", "TST006"}
    code, _, err = verify(str(PAIRS), *MACHINERY, "--rule", "AIP999")
    assert code == 2 and "no fixture pair for --rule AIP999" in err


def test_write_results_file_feeds_load_results(tmp_path):
    fixtures = tmp_path / "fixtures"
    for name in ("TST001_list_to_set", "TST007_memory_stream", "TST005_needs_cuda"):
        shutil.copytree(PAIRS / name, fixtures / name)
    verify(str(fixtures), *FAST, "--write-results")  # the exit code depends on timing
    document = json.loads((fixtures / "RESULTS-cpu.json").read_text())
    assert [e["pair"] for e in document["pairs"]] == sorted(
        p.name for p in fixtures.iterdir() if p.is_dir()
    )

    figures = load_results(fixtures)
    assert set(figures) == {"TST001", "TST007"}  # skipped pairs carry no figure
    time_figure = figures["TST001"]
    assert time_figure["metric"] == "time" and time_figure["device"] == "CPU"
    assert time_figure["size"] == 300 and len(time_figure["ci"]) == 2
    assert time_figure["text"].startswith("measured ") and ", CPU, 20" in time_figure["text"]
    assert figures["TST007"]["metric"] == "memory" and figures["TST007"]["ci"] is None

    # A later run of one pair keeps the other pairs' entries.
    verify(str(fixtures), *FAST, "--write-results", "--rule", "TST001")
    kept = json.loads((fixtures / "RESULTS-cpu.json").read_text())
    assert {e["pair"] for e in kept["pairs"]} == {e["pair"] for e in document["pairs"]}


def test_usage_errors_exit_2_with_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = verify("--device", "cpu")
    assert code == 2 and "no fixtures/ directory in" in err
    code, _, err = verify(str(PAIRS), "--check-only", "--write-results")
    assert code == 2 and "cannot be combined with --check-only" in err
    (tmp_path / "fixtures").mkdir()
    code, _, err = verify("--device", "cpu")
    assert code == 2 and "no fixture pairs" in err


def test_missing_matplotlib_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    code, _, err = verify(str(PAIRS / "TST001_list_to_set"), *MACHINERY, "--report", str(tmp_path))
    assert code == 0
    assert "matplotlib is not installed, so no PNG was written" in err
    assert "Traceback" not in err
    assert (tmp_path / "results.json").is_file() and not (tmp_path / "chart.png").exists()


def test_broken_pair_toml_is_reported_and_others_still_run(tmp_path):
    shutil.copytree(PAIRS / "TST001_list_to_set", tmp_path / "TST001_list_to_set")
    broken = tmp_path / "TST010_broken"
    shutil.copytree(PAIRS / "TST001_list_to_set", broken)
    (broken / "pair.toml").write_text('rule = "TST010"\nfix = "sometimes"\n[sizes]\ndefault = 3\n')
    code, out, _ = verify(str(tmp_path), *MACHINERY)
    assert code == 1
    assert "TST001_list_to_set  cpu" in out
    assert "TST010_broken: bad pair.toml: fix = 'sometimes', expected one of" in out
    assert re.search(r"TST010  TST010_broken +cpu +- +- +- +- +- +n\.a\. +ERROR", out)


def test_cuda_requested_without_a_gpu_is_a_usage_error(monkeypatch):
    pytest.importorskip("torch")
    probe = machine.probe_cuda()  # the real probe, once: it imports torch in a child
    assert isinstance(probe["cuda"], bool)
    if probe["cuda"]:
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(machine, "probe_cuda", lambda: probe)
    code, _, err = verify(str(PAIRS / "TST001_list_to_set"), "--device", "cuda")
    assert code == 2 and "torch sees no CUDA GPU" in err


def test_module_runs_standalone():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aiperf_lint.verify.command",
            str(PAIRS / "TST001_list_to_set"),
            *MACHINERY,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pairs"][0]["status"] == "measured"


def test_ctrl_c_kills_the_children_and_exits_130():
    # A shell starts background jobs with SIGINT ignored (`make test &`), and Python
    # keeps that: install Python's own handler so the test does not depend on it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        code, _, err = verify(str(PAIRS / "TST004_timeout"), "--device", "cpu", "--timeout", "60")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert code == 130 and "interrupted" in err
    assert child_runners_of(os.getpid()) == []


def child_runners_of(parent: int) -> list[int]:
    """PIDs of verifier child runners whose parent is ``parent`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if ppid == parent and b"aiperf_lint.verify.child" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_memory_cap_turns_a_runaway_allocation_into_a_clear_error():
    pair = str(PAIRS / "TST010_memory_cap")
    code, out, _ = verify(pair, *MACHINERY, "--size", "100000", "--memory-cap", "1024")
    assert code == 1
    assert "before.py: MemoryError: exceeded the memory cap of 1024 MiB" in out
