"""The committed per-device results files (fixtures/RESULTS-<device>.json) and a cheap reader.

``load_results`` is what rule docs, the README and reporters use to quote a measured
figure ("measured 41x at size 10000, CPU, 2026-11-25"). It is stdlib-only, reads a
few small JSON files and never runs anything.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from aiperf_lint.verify.report import format_ratio, summarize

RESULTS_GLOB = "RESULTS-*.json"
GAIN_VERDICTS = ("faster", "less memory")


def results_path(fixtures_dir: Path, slug: str) -> Path:
    return Path(fixtures_dir) / f"RESULTS-{slug}.json"


def load_results(fixtures_dir: str | os.PathLike, device: str | None = None) -> dict[str, dict]:
    """Best measured figure per rule code, from every RESULTS-*.json in ``fixtures_dir``.

    Each value: ``{"speedup", "ci", "size", "device", "date", "metric"}`` plus ``rule``,
    ``pair``, ``size_label``, ``verdict`` and ``text`` (a ready-made phrase). ``speedup``
    is the ratio of medians for time claims and the peak-memory ratio for memory claims
    (``ci`` is then None). ``device`` filters by file: "cpu", a GPU slug such as
    "nvidia-h200", or "cuda" for any GPU file. Per rule the pick prefers a shown gain,
    then CPU (what everyone can reproduce), then the pair's default size. Missing or
    unreadable files give an empty dict: quoting a figure is never worth a crash.
    """
    best: dict[str, tuple[tuple, dict]] = {}
    for path in sorted(Path(fixtures_dir).glob(RESULTS_GLOB)):
        if not _device_matches(device, path.stem.removeprefix("RESULTS-")):
            continue
        for figure in _figures(path):
            rank = (
                figure["verdict"] in GAIN_VERDICTS,
                figure["device"] == "CPU",
                figure["size_label"] == "default",
            )
            if figure["rule"] not in best or rank > best[figure["rule"]][0]:
                best[figure["rule"]] = (rank, figure)
    return {rule: figure for rule, (_, figure) in sorted(best.items())}


def _device_matches(wanted: str | None, slug: str) -> bool:
    return wanted is None or wanted == slug or (wanted == "cuda" and slug != "cpu")


def _figures(path: Path) -> list[dict]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        machine = document["machine"]
        return [
            _figure(entry, machine)
            for entry in document["pairs"]
            if entry.get("status") == "measured"
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _figure(entry: dict, machine: dict) -> dict:
    metric = entry["claim"]["metric"]
    if metric == "memory":
        speedup, ci = entry["memory"]["ratio"], None
    else:
        speedup, ci = entry["time"]["ratio_of_medians"], list(entry["time"]["ci95"])
    device = "CPU" if entry["device"] == "cpu" else (machine.get("device_name") or "GPU")
    date = entry["date"][:10]
    what = " less peak memory" if metric == "memory" else ""
    if entry["verdict"] not in GAIN_VERDICTS:  # quote a figure only with its verdict
        what += f" ({entry['verdict']})"
    return {
        "rule": entry["rule"],
        "pair": entry["pair"],
        "speedup": speedup,
        "ci": ci,
        "size": entry["size"],
        "size_label": entry["size_label"],
        "device": device,
        "date": date,
        "metric": metric,
        "verdict": entry["verdict"],
        "text": f"measured {format_ratio(speedup)}{what} at size {entry['size']}, {device}, {date}",
    }


def write_results(document: dict, path: Path) -> Path:
    """Write the evidence file, keeping earlier entries for pairs this run did not measure."""
    previous = _previous(path)
    fresh = {_identity(entry) for entry in document["pairs"]}
    kept = [entry for entry in previous["pairs"] if _identity(entry) not in fresh]
    pairs = sorted(kept + document["pairs"], key=lambda entry: (entry["pair"], entry["size"]))
    merged = {
        **document,
        "pairs": pairs,
        "summary": summarize(pairs, document["summary"]["exit_code"]),
    }
    if kept:  # say which runs the rows come from (`command` is the latest)
        earlier = [c for c in previous["commands"] if c != document["command"]]
        merged["earlier_commands"] = earlier
    _write(path, json.dumps(merged, indent=2, allow_nan=False) + "\n")
    return path


def _identity(entry: dict) -> tuple:
    """A new "default" run of a pair replaces the old one even if its default size changed."""
    return entry["pair"], entry["size_label"]


def _previous(path: Path) -> dict:
    """The evidence file's pairs (schema 1 only) and the commands its rows came from."""
    found: dict = {"pairs": [], "commands": []}
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return found
    malformed = (AttributeError, KeyError, TypeError)
    with contextlib.suppress(*malformed):
        if previous.get("schema_version") == 1:
            found["pairs"] = list(previous["pairs"])
    with contextlib.suppress(*malformed):
        found["commands"] = [*previous.get("earlier_commands", []), previous["command"]]
    return found


def _write(path: Path, text: str) -> None:
    from aiperf_lint.fileio import atomic_write  # only writers pay for hashlib/tempfile

    if path.exists():  # a committed evidence file is never left half-overwritten
        atomic_write(path, text.encode("utf-8"))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
