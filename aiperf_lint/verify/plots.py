"""PNG charts (matplotlib is an optional extra, imported only when a chart is asked for)."""

from __future__ import annotations

from pathlib import Path

from aiperf_lint.verify.report import device_label, format_ratio

BEFORE_COLOR, AFTER_COLOR = "#d62728", "#2ca02c"


class PlotUnavailable(Exception):
    """matplotlib is missing: a one-line message, never a traceback."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(
            "matplotlib is not installed, so no PNG was written: pip install 'aiperf-lint[verify]'"
        ) from None
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as pyplot

    return pyplot


def _timed(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e.get("time")]


def _error_bars(entries: list[dict], variant: str) -> list[list[float]]:
    """IQR as asymmetric error bars around the median."""
    stats = [e["time"][variant] for e in entries]
    return [[s["median_s"] - s["q1_s"] for s in stats], [s["q3_s"] - s["median_s"] for s in stats]]


def chart_before_after(document: dict, path: Path) -> Path | None:
    """Horizontal bars, before vs after median time per pair, log scale. None: nothing timed."""
    entries = _timed(document["pairs"])
    if not entries:
        return None
    plt = _pyplot()
    height = 0.38
    figure, axes = plt.subplots(figsize=(10, 1.0 + 0.7 * len(entries)))
    positions = list(range(len(entries)))
    for offset, variant, color in (
        (-height / 2, "before", BEFORE_COLOR),
        (height / 2, "after", AFTER_COLOR),
    ):
        axes.barh(
            [p + offset for p in positions],
            [e["time"][variant]["median_s"] for e in entries],
            height=height,
            xerr=_error_bars(entries, variant),
            color=color,
            label=variant,
        )
    for position, entry in zip(positions, entries):
        axes.annotate(
            _gain_label(entry),
            (entry["time"]["before"]["q3_s"], position - height / 2),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    axes.set_yticks(positions, [_pair_label(e) for e in entries], fontsize=8)
    axes.invert_yaxis()
    axes.set_xscale("log")
    low, high = axes.get_xlim()
    axes.set_xlim(low, high * 30)  # room for the speed-up labels right of the bars
    axes.set_xlabel("time per run() call, s (median, IQR bars; log scale)")
    axes.set_title(f"aiperf-lint verify: before vs after on {device_label(document['machine'])}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(plt, figure, path)


def sweep_plot(entries: list[dict], device_label: str, path: Path) -> Path | None:
    """Time vs size, log-log, before and after, for one pair's sweep. None: < 2 sizes timed."""
    entries = sorted(_timed(entries), key=lambda e: e["size"])
    if len(entries) < 2:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 5))
    sizes = [e["size"] for e in entries]
    for variant, color in (("before", BEFORE_COLOR), ("after", AFTER_COLOR)):
        medians = [e["time"][variant]["median_s"] for e in entries]
        axes.errorbar(
            sizes,
            medians,
            yerr=_error_bars(entries, variant),
            marker="o",
            color=color,
            label=variant,
        )
    for entry in entries:
        axes.annotate(
            format_ratio(entry["time"]["ratio_of_medians"]),
            (entry["size"], entry["time"]["before"]["median_s"]),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("size (setup argument)")
    axes.set_ylabel("time per run() call, s")
    axes.set_title(f"{_pair_name(entries[0])} on {device_label}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    return _save(plt, figure, path)


def _pair_name(entry: dict) -> str:
    """Pair dirs are named <CODE>_<slug>; add the code only when the name lacks it."""
    pair, rule = entry["pair"], entry["rule"]
    return pair if pair.startswith(rule) else f"{rule} {pair}"


def _pair_label(entry: dict) -> str:
    return f"{_pair_name(entry)} (n={entry['size']})"


def _gain_label(entry: dict) -> str:
    label = format_ratio(entry["time"]["ratio_of_medians"])
    memory = entry.get("memory") or {}
    if entry["claim"]["metric"] == "memory" and memory.get("ratio") is not None:
        label += f" time, {format_ratio(memory['ratio'])} peak memory"
    return label


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
