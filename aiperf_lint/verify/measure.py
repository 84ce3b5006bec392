"""Measure one pair at one size: equivalence, interleaved timing, peak memory, verdict.

The result is a JSON-ready dict (one entry of the report's "pairs" list); every
reporter works from these dicts, so a saved results file can be re-rendered.
"""

from __future__ import annotations

import contextlib
import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass

from aiperf_lint.verify import stats
from aiperf_lint.verify.pairs import Pair
from aiperf_lint.verify.runner import ChildRunner, RunnerError

MAX_CALLS_PER_MEASUREMENT = 1_000_000
# Peak-memory growth below this is noise (page granularity, allocator slack); flooring
# both sides keeps "364 MiB vs ~0" from becoming an infinite ratio: it reads as >= 364x.
MEMORY_FLOOR_MIB = 1.0
# "slower" needs the whole CI below this: identical code on a busy machine is ~1.0 +- 10%.
SLOWER_BELOW = 1 / 1.10
# Leave this share of a child's timeout_s unused by the timing loop, as headroom.
TIMEOUT_HEADROOM = 0.25


@dataclass(frozen=True)
class Options:
    device: str = "cpu"
    repeat: int = 7
    min_time_s: float = 0.05
    memory_cap_mib: int = 0
    timeout_s: float | None = None  # overrides every pair's timeout_s
    check_only: bool = False


Progress = Callable[[str], None]


def measure_pair(pair: Pair, entry: dict, options: Options, progress: Progress) -> dict:
    """Fill ``entry`` (from new_entry) with the measurement of ``pair`` at entry["size"]."""
    timeout_s = options.timeout_s or pair.timeout_s
    runners = [
        ChildRunner(path, entry["size"], options.device, timeout_s, options.memory_cap_mib)
        for path in (pair.before, pair.after)
    ]
    try:
        # Runners are context managers: a normal exit lets the children finish, an
        # exception (a failed variant, Ctrl-C) kills both process groups at once.
        with contextlib.ExitStack() as stack:
            for runner in runners:
                stack.enter_context(runner)
            _measure(pair, runners, entry, options, progress)
    except RunnerError as exc:
        mark_error(entry, str(exc))
    return entry


def _measure(
    pair: Pair, runners: list[ChildRunner], entry: dict, options: Options, progress: Progress
) -> None:
    before, after = runners
    progress("setup")
    setups = [runner.start() for runner in runners]
    progress("first call (peak memory)")
    firsts = [runner.request("first call", "first") for runner in runners]
    if options.device == "cuda" and not any(first["cuda_used"] for first in firsts):
        entry["device"] = "cpu"  # e.g. a pandas pair on a GPU machine: say where it really ran
    entry["memory"] = memory_summary(firsts, entry["device"])
    progress("equivalence")
    mismatch = after.request(
        "equivalence check", "compare", before.request("result", "result"), pair.rtol, pair.atol
    )
    entry["equivalence"] = {"checked": True, "equal": mismatch is None, "message": mismatch}
    if mismatch is not None:
        entry.update(
            status="different",
            verdict="FAILED: results differ",
            passed=False,
            note=f"before.py and after.py return different results (before vs after): {mismatch}",
        )
        return
    first_call_s = [first["time_s"] for first in firsts]
    samples, calls, note = time_interleaved(runners, first_call_s, options, progress)
    entry["time"] = time_summary(samples, calls, setups, firsts)
    entry["status"] = "measured"
    judge(entry, pair, options, extra_note=note)


def calls_for(per_call_s: float, min_time_s: float) -> int:
    """Calls per measurement so that one measurement lasts at least min_time_s."""
    if per_call_s <= 0:
        return MAX_CALLS_PER_MEASUREMENT
    return max(1, min(MAX_CALLS_PER_MEASUREMENT, math.ceil(min_time_s / per_call_s)))


def time_interleaved(
    runners: list[ChildRunner], first_call_s: list[float], options: Options, progress: Progress
):
    """Per-call times for each runner over interleaved repeats with alternating order."""
    per_call = [
        # A first (cold, warm-up) call already longer than min_time means one call per
        # measurement; otherwise time one warm call to calibrate (a second warm-up too).
        first if first >= options.min_time_s else runner.request("calibration", "time", 1)
        for runner, first in zip(runners, first_call_s)
    ]
    calls = [calls_for(t, options.min_time_s) for t in per_call]
    samples: list[list[float]] = [[], []]
    note = ""
    for repeat in range(options.repeat):
        cost = sum(n * t for n, t in zip(calls, per_call))
        budget = min(r.remaining_s() for r in runners) - TIMEOUT_HEADROOM * runners[0].timeout_s
        if repeat > 0 and cost > budget:
            note = f"repeats cut to {repeat} by timeout_s"
            break
        progress(f"timing, repeat {repeat + 1}/{options.repeat}")
        order = (0, 1) if repeat % 2 == 0 else (1, 0)  # rotate which variant goes first
        for index in order:
            total = runners[index].request("timing", "time", calls[index])
            per_call[index] = total / calls[index]
            samples[index].append(per_call[index])
    return samples, calls, note


def time_summary(
    samples: list[list[float]], calls: list[int], setups: list[dict], firsts: list[dict]
) -> dict:
    before, after = samples
    ratios = stats.paired_ratios(before, after)
    ci_low, ci_high = stats.bootstrap_ci(ratios)
    summary = {"repeats": len(before)}
    for name, raw, n, setup, first in zip(("before", "after"), samples, calls, setups, firsts):
        summary[name] = {
            "raw_s": raw,
            "calls_per_measurement": n,
            "setup_s": setup["setup_s"],
            "first_call_s": first["time_s"],
            **{f"{key}_s": value for key, value in stats.summarize(raw).items()},
        }
    summary["ratio_of_medians"] = summary["before"]["median_s"] / summary["after"]["median_s"]
    summary["paired_ratios"] = ratios
    summary["paired"] = stats.summarize(ratios)
    summary["ci95"] = [ci_low, ci_high]
    return summary


def memory_summary(firsts: list[dict], device: str) -> dict:
    """Peak growth of the first call: GPU allocator on CUDA (when the pair used it), else RSS."""
    on_gpu = device == "cuda" and all(first["peak_cuda_mib"] is not None for first in firsts)
    key = "peak_cuda_mib" if on_gpu else "peak_rss_mib"
    before, after = (first[key] for first in firsts)
    ratio = None
    if before is not None and after is not None:
        ratio = max(before, MEMORY_FLOOR_MIB) / max(after, MEMORY_FLOOR_MIB)
    return {
        "measure": key,
        "before": {k: firsts[0][k] for k in ("peak_rss_mib", "peak_cuda_mib")},
        "after": {k: firsts[1][k] for k in ("peak_rss_mib", "peak_cuda_mib")},
        "before_mib": before,
        "after_mib": after,
        "ratio": ratio,
    }


def judge(entry: dict, pair: Pair, options: Options, extra_note: str = "") -> None:
    """Set verdict/passed from the claim; the gain must clear min_speedup with confidence."""
    gain, verdict = _gain_verdict(entry, pair)
    claimed_here = entry["device"] in pair.claim_devices
    notes = [extra_note] if extra_note else []
    if not pair.claim_devices:
        notes.append("no gain claimed (claim.devices is empty)")
    elif not claimed_here:
        notes.append(f"gain claimed on {'/'.join(pair.claim_devices)} only")
    entry["claim"]["claimed_here"] = claimed_here
    entry.update(
        verdict=verdict,
        passed=gain or not claimed_here or options.check_only,
        note="; ".join(notes),
    )


def _gain_verdict(entry: dict, pair: Pair) -> tuple[bool, str]:
    if pair.metric == "memory":
        ratio = entry["memory"]["ratio"]
        if ratio is None:
            return False, "memory not measurable here"
        return (
            (True, "less memory") if ratio >= pair.min_speedup else (False, "no significant gain")
        )
    timing = entry["time"]
    lower = min(timing["ci95"][0], timing["paired"]["q1"])
    if lower >= pair.min_speedup:
        return True, "faster"
    if timing["ci95"][1] < SLOWER_BELOW:
        return False, "slower"
    return False, "no significant gain"


def new_entry(pair: Pair, size_label: str, size: int, device: str) -> dict:
    return {
        "pair": pair.name,
        "rule": pair.rule,
        "path": str(pair.path),
        "summary": pair.summary,
        "device": device,
        "size_label": size_label,
        "size": size,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "claim": {
            "metric": pair.metric,
            "min_speedup": pair.min_speedup,
            "devices": list(pair.claim_devices),
            "claimed_here": device in pair.claim_devices,
        },
        "status": "pending",
        "verdict": "",
        "passed": False,
        "note": "",
        "error": None,
        "fix_match": "n.a.",
        "fix_note": "",
        "equivalence": {"checked": False, "equal": None, "message": None},
        "time": None,
        "memory": None,
    }


def mark_error(entry: dict, message: str) -> None:
    entry.update(status="error", verdict="ERROR", passed=False, error=message, note=message)


def mark_skipped(entry: dict, reason: str) -> None:
    entry.update(status="skipped", verdict=f"skipped: {reason}", passed=True, note="")
