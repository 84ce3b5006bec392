"""Unit tests of the verifier's parts: statistics, equivalence, pair.toml, results, cells."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from aiperf_lint.verify import fixcheck, report, stats
from aiperf_lint.verify.equivalence import compare
from aiperf_lint.verify.measure import Options, judge, new_entry
from aiperf_lint.verify.pairs import Pair, PairConfigError, discover, load_pair
from aiperf_lint.verify.results import load_results, write_results

PAIRS = Path(__file__).parent / "verify_pairs"

# -- statistics -----------------------------------------------------------------------


def test_quartiles_are_inclusive():
    assert stats.quartiles([1, 2, 3, 4, 5]) == (2.0, 3.0, 4.0)
    assert stats.quartiles([1, 2, 3, 4]) == (1.75, 2.5, 3.25)
    assert stats.quartiles([7.0]) == (7.0, 7.0, 7.0)
    assert stats.summarize([1, 2, 3, 4, 5]) == {"median": 3.0, "q1": 2.0, "q3": 4.0, "iqr": 2.0}


def test_paired_ratios():
    assert stats.paired_ratios([10.0, 9.0], [2.0, 3.0]) == [5.0, 3.0]
    with pytest.raises(ValueError):
        stats.paired_ratios([1.0], [1.0, 2.0])


def test_bootstrap_ci_of_constant_data_is_that_constant():
    assert stats.bootstrap_ci([2.5] * 9) == (2.5, 2.5)
    assert stats.bootstrap_ci([4.0]) == (4.0, 4.0)


def test_bootstrap_ci_brackets_the_median_and_is_reproducible():
    samples = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]
    low, high = stats.bootstrap_ci(samples)
    assert low < statistics.median(samples) < high
    assert min(samples) <= low and high <= max(samples)
    assert stats.bootstrap_ci(samples) == (low, high)  # fixed seed


def test_bootstrap_ci_matches_the_known_interval_of_a_small_sample():
    # For n=3 the median of a resample is one of the three values; each extreme has
    # probability 7/27 (> 2.5%), so the 95% interval is the sample's full range.
    assert stats.bootstrap_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)


def test_bootstrap_ci_narrows_with_more_data():
    narrow = [10.0 + 0.01 * (i % 7) for i in range(60)]
    wide = [10.0 + 1.0 * (i % 7) for i in range(60)]
    assert _width(stats.bootstrap_ci(narrow)) < _width(stats.bootstrap_ci(wide))
    few = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert _width(stats.bootstrap_ci(few * 20)) < _width(stats.bootstrap_ci(few))


def _width(interval):
    return interval[1] - interval[0]


def test_bootstrap_ci_of_a_clear_speedup_excludes_one():
    ratios = [11.8, 12.1, 12.0, 11.9, 12.3, 12.2, 11.7]
    low, high = stats.bootstrap_ci(ratios)
    assert 11.7 <= low <= 12.0 <= high <= 12.3


# -- equivalence ----------------------------------------------------------------------

ULP_A = 0.1 + 0.2  # 0.30000000000000004
ULP_B = 0.3


def test_floats_one_ulp_apart_pass_with_tolerance_but_not_exactly():
    assert math.nextafter(ULP_B, 1.0) == ULP_A
    assert compare(ULP_A, ULP_B, rtol=1e-15, atol=0.0) is None
    assert compare(ULP_A, ULP_B, rtol=0.0, atol=0.0) == (
        "result: 0.30000000000000004 vs 0.3 (rtol=0, atol=0)"
    )


def test_ints_strings_bools_are_exact_whatever_the_tolerance():
    assert compare(10**18, 10**18 + 1, rtol=1.0, atol=1.0) == (
        "result: 1000000000000000000 vs 1000000000000000001"
    )
    assert compare("a", "b", rtol=1.0, atol=1.0) == "result: 'a' vs 'b'"
    assert compare(True, False, rtol=1.0, atol=1.0) == "result: True vs False"
    assert compare(None, None, rtol=0.0, atol=0.0) is None


def test_kinds_must_match():
    assert compare(1, 1.0, 0.0, 0.0) == "result: type differs: int vs float"
    assert compare(1, True, 0.0, 0.0) == "result: type differs: int vs bool"
    assert compare([1], (1,), 0.0, 0.0) == "result: type differs: list vs tuple"


def test_nan_equals_nan_and_infinities_must_match():
    assert compare(float("nan"), float("nan"), 0.0, 0.0) is None
    assert compare(float("inf"), float("inf"), 0.0, 0.0) is None
    assert compare(float("inf"), float("-inf"), 1.0, 1.0) is not None
    assert compare(1.0, float("nan"), 1.0, 1.0) is not None


def test_containers_are_compared_recursively_with_the_path_of_the_difference():
    expected = {"loss": [1.0, (2, "x")], "n": 3}
    assert compare(expected, {"loss": [1.0 + 1e-16, (2, "x")], "n": 3}, 1e-12, 0.0) is None
    assert compare(expected, {"loss": [1.0, (2, "y")], "n": 3}, 1e-12, 0.0) == (
        "result['loss'][1][1]: 'x' vs 'y'"
    )
    assert compare([1, 2], [1, 2, 3], 0.0, 0.0) == "result: length differs: 2 vs 3"
    assert compare({"a": 1}, {"b": 1}, 0.0, 0.0) == (
        "result: keys differ: missing [\"'a'\"], extra [\"'b'\"]"
    )
    assert compare({1, 2}, {1, 2}, 0.0, 0.0) is None


def test_numpy_arrays():
    np = pytest.importorskip("numpy")
    values = np.linspace(-3, 3, 1001)
    python_squares = np.array([float(x) ** 2 for x in values.tolist()])
    assert compare(python_squares, values * values, rtol=1e-15, atol=0.0) is None
    assert compare(np.arange(5), np.arange(5), 0.0, 0.0) is None
    assert compare(np.array([1.0, np.nan]), np.array([1.0, np.nan]), 0.0, 0.0) is None
    changed = values.copy()
    changed[7] += 1.0
    message = compare(values, changed, rtol=1e-9, atol=0.0)
    assert message.startswith("result: 1 of 1001 elements differ; first at [7]:")
    assert compare(np.zeros(3), np.zeros(4), 0.0, 0.0) == "result: shape differs: (3,) vs (4,)"
    assert compare(np.zeros(3), np.zeros(3, "f4"), 0.0, 0.0) == (
        "result: dtype differs: float64 vs float32"
    )
    assert compare(np.arange(3), np.array([0, 1, 3]), 1.0, 1.0).startswith(
        "result: 1 of 3 elements differ"
    )
    assert compare(np.int64(3), 3, 0.0, 0.0) is None  # NumPy and Python ints by value
    assert compare(np.float64(0.5), 0.5, 0.0, 0.0) is None


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    values = torch.linspace(-3, 3, 101, dtype=torch.float64)
    assert (
        compare(values, values.nextafter(torch.tensor(10.0, dtype=torch.float64)), 1e-15, 0.0)
        is None
    )
    assert compare(values, values + 1e-3, 1e-9, 0.0).startswith(
        "result: 101 of 101 elements differ"
    )
    assert compare(torch.arange(4), torch.arange(4), 0.0, 0.0) is None
    assert compare(torch.arange(4), torch.tensor([0, 1, 2, 4]), 1.0, 1.0).startswith(
        "result: 1 of 4 elements differ; first at [3]: 3 vs 4"
    )
    assert compare(torch.ones(2, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.bfloat16), 0, 0)
    assert compare(torch.ones(2), torch.ones(2, dtype=torch.float64), 0.0, 0.0) == (
        "result: dtype differs: torch.float32 vs torch.float64"
    )
    assert compare(torch.tensor(1.5), torch.tensor(1.5), 0.0, 0.0) is None  # 0-d
    assert compare(torch.tensor(1.5), torch.tensor(2.5), 0.0, 0.0) is not None


def test_pandas_frames_and_series():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"i": [1, 2, 3], "f": [0.1, 0.2, 0.3]})
    near = pd.DataFrame({"i": [1, 2, 3], "f": [0.1, 0.2, 0.1 + 0.2]})
    assert compare(frame, near, rtol=1e-12, atol=0.0) is None
    assert "['f']" in compare(frame, near, rtol=0.0, atol=0.0)
    big = pd.DataFrame({"i": [1_000_000]})
    assert compare(big, pd.DataFrame({"i": [1_000_001]}), rtol=1.0, atol=1.0).startswith(
        "result['i']:"
    )  # int columns stay exact even with a tolerance
    assert compare(frame, frame.rename(columns={"f": "g"}), 0.0, 0.0).startswith("result.columns:")
    assert compare(frame, frame.set_index("i"), 0.0, 0.0).startswith("result.columns:")
    assert compare(frame["f"], near["f"], 1e-12, 0.0) is None
    assert compare(frame["f"], frame["f"] * 2, 1e-12, 0.0).startswith("result:")
    assert compare(frame, frame["f"], 0.0, 0.0).startswith("result: type differs: pandas")


def test_objects_fall_back_to_equality():
    assert compare(Path("a"), Path("a"), 0.0, 0.0) is None
    assert compare(Path("a"), Path("b"), 0.0, 0.0) == (
        "result: PosixPath('a') vs PosixPath('b') (compared with ==)"
    )


# -- pair.toml -------------------------------------------------------------------------


def test_load_pair_reads_the_fixture_contract():
    pair = load_pair(PAIRS / "TST001_list_to_set")
    assert pair.rule == "TST001" and pair.fix == "none" and pair.requires == ()
    assert pair.sizes == {"small": 300, "default": 1000, "large": 3000}
    assert pair.sweep == (50, 200, 800)
    assert (pair.metric, pair.min_speedup, pair.claim_devices) == ("time", 1.5, ("cpu", "cuda"))
    assert pair.size_for("small") == 300 and pair.size_for("1234") == 1234
    assert load_pair(PAIRS / "TST004_timeout").size_for("large") == 10  # falls back to default


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('rule = "X"\n[sizes]\ndefault = 1\n[claim]\nmetric = "speed"\n', "claim.metric = 'speed'"),
        ('rule = "X"\n', "[sizes] needs default"),
        ("[sizes]\ndefault = 1\n", "bad pair.toml: 'rule'"),
        ('rule = "X"\n[sizes\n', "cannot read pair.toml"),
    ],
)
def test_bad_pair_toml_is_one_line_error(tmp_path, toml, message):
    for name in ("before.py", "after.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "pair.toml").write_text(toml)
    with pytest.raises(PairConfigError, match=None) as caught:
        load_pair(tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_discover_accepts_pair_dirs_and_dirs_of_pairs(tmp_path):
    found = discover([PAIRS, PAIRS / "TST001_list_to_set"])
    assert found[0].name == "TST001_list_to_set" and len(found) == len(set(found))
    with pytest.raises(PairConfigError, match="no fixture pairs"):
        discover([tmp_path])


# -- verdicts ---------------------------------------------------------------------------


def timed_entry(pair: Pair, ratios: list[float], device: str = "cpu") -> dict:
    entry = new_entry(pair, "default", 10, device)
    low, high = stats.bootstrap_ci(ratios)
    entry["time"] = {"paired": stats.summarize(ratios), "ci95": [low, high]}
    entry["status"] = "measured"
    return entry


def test_gain_must_clear_the_claim_with_confidence():
    pair = Pair(path=Path("AIP1_x"), rule="AIP1", min_speedup=1.10)
    cases = {
        "faster": [1.5, 1.6, 1.55, 1.52, 1.58],
        "no significant gain": [1.05, 1.2, 1.12, 1.09, 1.15],
        "slower": [0.8, 0.82, 0.79, 0.81, 0.8],
    }
    for verdict, ratios in cases.items():
        entry = timed_entry(pair, ratios)
        judge(entry, pair, Options())
        assert entry["verdict"] == verdict
        assert entry["passed"] == (verdict == "faster")


def test_gain_claimed_on_another_device_is_reported_not_failed():
    pair = Pair(path=Path("AIP1_x"), rule="AIP1", claim_devices=("cuda",))
    entry = timed_entry(pair, [1.0, 0.99, 1.01])
    judge(entry, pair, Options(device="cpu"))
    assert entry["verdict"] == "no significant gain" and entry["passed"]
    assert entry["note"] == "gain claimed on cuda only"


# -- fix check ---------------------------------------------------------------------------


def test_fix_check(monkeypatch, tmp_path):
    import aiperf_lint.api

    pair_dir = tmp_path / "AIP401_x"
    pair_dir.mkdir()
    (pair_dir / "before.py").write_text("a = 1\n")
    (pair_dir / "after.py").write_text("a = 2\n")
    pair = Pair(path=pair_dir, rule="AIP401", fix="safe")
    assert fixcheck.check_fix(Pair(path=pair_dir, rule="AIP401", fix="none")) == ("n.a.", "")

    calls = []
    monkeypatch.setattr(
        aiperf_lint.api, "fix_source", lambda s, p, unsafe: calls.append(unsafe) or "a = 2\n"
    )
    assert fixcheck.check_fix(pair) == ("yes", "")
    assert fixcheck.check_fix(Pair(path=pair_dir, rule="AIP401", fix="unsafe"))[0] == "yes"
    assert calls == [False, True]

    monkeypatch.setattr(aiperf_lint.api, "fix_source", lambda s, p, unsafe: "a = 3\n")
    assert fixcheck.check_fix(pair) == (
        "no",
        "after.py differs from --fix output: line 1: after.py has 'a = 2', --fix gives 'a = 3'",
    )
    monkeypatch.setattr(aiperf_lint.api, "fix_source", lambda s, p, unsafe: 1 / 0)
    assert fixcheck.check_fix(pair) == (
        "error",
        "fix_source raised ZeroDivisionError: division by zero",
    )
    monkeypatch.delattr(aiperf_lint.api, "fix_source")
    match, note = fixcheck.check_fix(pair)
    assert match == "n.a." and "fix_source unavailable" in note


# -- results file -----------------------------------------------------------------------


def results_document(entries: list[dict], device: str = "cpu", name: str = "AMD EPYC") -> dict:
    machine = {"device": device, "device_name": name, "cpu_model": "AMD EPYC", "cpu_count": 2}
    return report.build_document(entries, machine, {}, ["aiperf-lint", "verify"], 0)


def measured_entry(rule: str, ratio: float, verdict: str, device: str = "cpu", label="default"):
    pair = Pair(path=Path(f"{rule}_x"), rule=rule)
    entry = new_entry(pair, label, 10_000, device)
    entry.update(status="measured", verdict=verdict, passed=True, date="2026-11-25T10:00:00+00:00")
    entry["time"] = {"ratio_of_medians": ratio, "ci95": [ratio * 0.9, ratio * 1.1]}
    return entry


def test_load_results_quotes_the_best_figure_per_rule(tmp_path):
    write_results(
        results_document(
            [
                measured_entry("AIP401", 41.0, "faster"),
                measured_entry("AIP101", 1.0, "no significant gain"),
            ]
        ),
        tmp_path / "RESULTS-cpu.json",
    )
    gpu = measured_entry("AIP101", 3.2, "faster", device="cuda")
    write_results(
        results_document([gpu], "cuda", "NVIDIA H200"), tmp_path / "RESULTS-nvidia-h200.json"
    )

    figures = load_results(tmp_path)
    assert figures["AIP401"] == {
        "rule": "AIP401",
        "pair": "AIP401_x",
        "speedup": 41.0,
        "ci": [41.0 * 0.9, 41.0 * 1.1],
        "size": 10_000,
        "size_label": "default",
        "device": "CPU",
        "date": "2026-11-25",
        "metric": "time",
        "verdict": "faster",
        "text": "measured 41.0x at size 10000, CPU, 2026-11-25",
    }
    assert figures["AIP101"]["device"] == "NVIDIA H200"  # the shown gain wins over CPU
    cpu_only = load_results(tmp_path, device="cpu")["AIP101"]
    assert cpu_only["verdict"] == "no significant gain"
    assert cpu_only["text"] == "measured 1.00x (no significant gain) at size 10000, CPU, 2026-11-25"
    assert set(load_results(tmp_path, device="cuda")) == {"AIP101"}


def test_load_results_is_empty_without_files_and_ignores_broken_ones(tmp_path):
    assert load_results(tmp_path / "missing") == {}
    (tmp_path / "RESULTS-cpu.json").write_text("{not json")
    assert load_results(tmp_path) == {}


def test_load_results_imports_only_the_standard_library():
    code = (
        "import sys; from aiperf_lint.verify import load_results; load_results('fixtures');"
        "import aiperf_lint.verify.command;"
        "heavy = {'numpy', 'pandas', 'torch', 'matplotlib', 'libcst'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_write_results_is_plain_json(tmp_path):
    path = write_results(
        results_document([measured_entry("AIP401", 2.0, "faster")]), tmp_path / "R.json"
    )
    assert json.loads(path.read_text())["schema_version"] == 1


# -- cells ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3.0, "3.00 s"), (0.0153, "15.3 ms"), (0.000332, "332 µs"), (4.5e-8, "45.0 ns"), (None, "-")],
)
def test_format_seconds(seconds, text):
    assert report.format_seconds(seconds) == text


@pytest.mark.parametrize(("ratio", "text"), [(1.18, "1.18x"), (27.44, "27.4x"), (8583.2, "8,583x")])
def test_format_ratio(ratio, text):
    assert report.format_ratio(ratio) == text


def test_write_results_replaces_a_pair_measured_again_and_keeps_the_others(tmp_path):
    path = tmp_path / "RESULTS-cpu.json"
    old_401, old_402 = (
        measured_entry("AIP401", 41.0, "faster"),
        measured_entry("AIP402", 9.0, "faster"),
    )
    write_results(results_document([old_401, old_402]), path)
    new_401 = measured_entry("AIP401", 50.0, "faster")
    new_401["size"] = 20_000  # the pair's default size changed since
    write_results(results_document([new_401]), path)
    entries = json.loads(path.read_text())["pairs"]
    assert [(e["pair"], e["size"], e["time"]["ratio_of_medians"]) for e in entries] == [
        ("AIP401_x", 20_000, 50.0),
        ("AIP402_x", 10_000, 9.0),
    ]
    assert json.loads(path.read_text())["summary"]["pairs"] == 2
