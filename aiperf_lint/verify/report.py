"""Render verify results: the JSON evidence document, a terminal table, a markdown table.

Every renderer takes the JSON-shaped document, so a committed results file
(fixtures/RESULTS-cpu.json) can be rendered again without re-measuring.

JSON document, schema_version 1 (new keys may be added; a meaning never changes
without bumping the version):

    schema_version, tool, date (UTC ISO 8601), command (canonical argv list)
    machine:  platform, cpu_model, cpu_count, python, python_implementation,
              libraries {numpy, pandas, torch, matplotlib, libcst: version | null},
              device ("cpu" | "cuda"), device_name, load_average [1, 5, 15 min]
    settings: size, sweep, repeat, min_time_s, timeout_s_override, memory_cap_mib,
              check_only, rules
    summary:  pairs, passed, exit_code, measured, different, error, skipped, gain_shown
    pairs: one entry per pair and size:
        pair, rule, path, summary, device (where it really ran), size_label, size, date
        claim {metric, min_speedup, devices, claimed_here}
        status   "measured" | "different" | "error" | "skipped"
        verdict  "faster" | "less memory" | "no significant gain" | "slower" |
                 "FAILED: results differ" | "ERROR" | "skipped: needs ..."
        passed (counts toward exit 0), note, error (one line | null)
        fix_match "yes" | "no" | "n.a." | "error", fix_note
        equivalence {checked, equal, message}
        time (null unless measured): repeats, ratio_of_medians, paired_ratios,
             paired {median, q1, q3, iqr}, ci95 [low, high] (bootstrap, of paired ratios),
             before/after {raw_s (per-call seconds, one per repeat), calls_per_measurement,
                           setup_s, first_call_s, median_s, q1_s, q3_s, iqr_s}
        memory (null unless run): measure ("peak_rss_mib" | "peak_cuda_mib"),
             before/after {peak_rss_mib, peak_cuda_mib}, before_mib, after_mib,
             ratio (before/after, each floored at 1 MiB)
"""

from __future__ import annotations

import datetime
import json
import shlex

SCHEMA_VERSION = 1
CHECK_ONLY_NOTE = " (--check-only: speed-ups measured, not judged)"
COLUMNS = (
    "rule",
    "pair",
    "device",
    "size",
    "before",
    "after",
    "speed-up [95% CI]",
    "memory MiB",
    "fix",
    "verdict",
)


def build_document(
    entries: list[dict], machine: dict, settings: dict, command: list[str], exit_code: int
) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "aiperf-lint verify",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "settings": settings,
        "summary": summarize(entries, exit_code),
        "pairs": entries,
    }


def summarize(entries: list[dict], exit_code: int) -> dict:
    counts = {
        "pairs": len(entries),
        "passed": sum(e["passed"] for e in entries),
        "exit_code": exit_code,
    }
    for status in ("measured", "different", "error", "skipped"):
        counts[status] = sum(e["status"] == status for e in entries)
    counts["gain_shown"] = sum(e["verdict"] in ("faster", "less memory") for e in entries)
    return counts


def to_json(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False, default=_json_default) + "\n"


def _json_default(value):
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# -- cells -----------------------------------------------------------------------------


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{_three_digits(seconds / scale)} {unit}"
    return f"{_three_digits(seconds / 1e-9)} ns"


def format_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{_three_digits(ratio)}x"


def _three_digits(value: float) -> str:
    """Three significant digits, thousands separated: 1.18, 27.4, 925, 8,583."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def time_cells(entry: dict) -> tuple[str, str, str]:
    timing = entry.get("time")
    if not timing:
        return "-", "-", "-"
    low, high = timing["ci95"]
    speedup = (
        f"{format_ratio(timing['ratio_of_medians'])} [{format_ratio(low)}..{format_ratio(high)}]"
    )
    return (
        format_seconds(timing["before"]["median_s"]),
        format_seconds(timing["after"]["median_s"]),
        speedup,
    )


def memory_cell(entry: dict) -> str:
    memory = entry.get("memory")
    if not memory or memory["before_mib"] is None or memory["after_mib"] is None:
        return "-"
    prefix = "GPU " if memory["measure"] == "peak_cuda_mib" else ""
    return f"{prefix}{memory['before_mib']:.1f} -> {memory['after_mib']:.1f}"


def verdict_cell(entry: dict) -> str:
    verdict = entry["verdict"]
    if entry["status"] == "measured" and not entry["passed"]:
        verdict = f"{verdict} (claimed >= {entry['claim']['min_speedup']:g}x)"
    return verdict


def size_cell(entry: dict) -> str:
    """``default (2000)``; just ``2000`` in a sweep; ``-`` for a pair never set up."""
    label, size = entry["size_label"], entry["size"]
    if label in ("-", str(size)):
        return label
    return f"{label} ({size})"


def row(entry: dict) -> list[str]:
    before, after, speedup = time_cells(entry)
    return [
        entry["rule"],
        entry["pair"],
        entry["device"],
        size_cell(entry),
        before,
        after,
        speedup,
        memory_cell(entry),
        entry["fix_match"],
        verdict_cell(entry),
    ]


def notes(entries: list[dict]) -> list[str]:
    """One line per pair with something to say (errors, mismatches, scope of claims)."""
    lines = []
    for entry in entries:
        parts = [p for p in (entry.get("note"), entry.get("fix_note")) if p]
        if parts:
            where = (
                entry["pair"]
                if entry["size_label"] == "-"
                else f"{entry['pair']} ({entry['size']})"
            )
            lines.append(f"{where}: {'; '.join(parts)}")
    return lines


# -- renderers -----------------------------------------------------------------------------


def render_text(document: dict) -> str:
    rows = [list(COLUMNS)] + [row(entry) for entry in document["pairs"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    extra = notes(document["pairs"])
    if extra:
        lines += ["", *extra]
    lines += ["", summary_line(document)]
    return "\n".join(lines) + "\n"


def device_label(machine: dict) -> str:
    return (
        machine["device_name"] if machine["device"] == "cuda" else f"CPU ({machine['cpu_model']})"
    )


def summary_line(document: dict) -> str:
    s = document["summary"]
    device = device_label(document["machine"])
    failed = s["pairs"] - s["passed"]
    return (
        f"{s['pairs']} measurement(s) on {device}: {s['gain_shown']} showed the claimed gain, "
        f"{s['different']} gave different results, {s['error']} errored, {s['skipped']} skipped; "
        + ("all passed" if failed == 0 else f"{failed} FAILED")
        + CHECK_ONLY_NOTE * bool(document["settings"].get("check_only"))
    )


def render_markdown(document: dict) -> str:
    def cells(values) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    machine = document["machine"]
    check_only = CHECK_ONLY_NOTE * bool(document["settings"].get("check_only"))
    earlier = "".join(
        f"`{shlex.join(command)}`, then " for command in document.get("earlier_commands", [])
    )
    replaced = " (a later run replaces the rows of the pairs it measured)" if earlier else ""
    lines = [
        f"Measured by {earlier}`{shlex.join(document['command'])}`{replaced} on {device_label(machine)}, "
        f"{machine['cpu_count']} cores, Python {machine['python']}, {document['date'][:10]}"
        f"{check_only}.",
        "",
        cells(COLUMNS),
        cells(["---"] * len(COLUMNS)),
    ]
    lines += [cells(row(entry)) for entry in document["pairs"]]
    extra = notes(document["pairs"])
    if extra:
        lines += ["", *(f"- {line}" for line in extra)]
    return "\n".join(lines) + "\n"
