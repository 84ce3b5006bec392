"""Speed benchmark: aiperf-lint vs TorchFix, ruff and the bare LibCST parse floor.

Corpus: the installed source of torch, pandas and numpy (found with
`importlib.util.find_spec`, never imported). Every line of the table is the
median of `--runs` runs, each run a fresh process; peak RSS is the largest
resident set of that process and its workers (`RUSAGE_CHILDREN` of a wrapper).

    .venv/bin/python benchmarks/bench.py            # full corpus (slow: minutes)
    .venv/bin/python benchmarks/bench.py --tiny     # a few dozen files, 1 run (CI smoke)

TorchFix is installed into benchmarks/.venv-torchfix on first use (pip); it
runs on a sample (`--torchfix-files`) because it takes about half a second per
file, and aiperf-lint is timed on the same sample for the ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TORCHFIX_VENV = HERE / ".venv-torchfix"
CORPUS_PACKAGES = ("torch", "pandas", "numpy")
RUFF_SELECT = "PERF,PD,NPY,ASYNC,FURB"

# Runs a command and prints its wall time and the peak RSS of it and its children.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "rss_kb": usage.ru_maxrss, "rc": proc.returncode,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "stderr": proc.stderr.decode(errors="replace")[-2000:]}))
"""

# The parse floor: bare libcst.parse_module over a list of files, nothing else.
_PARSE_FLOOR = """
import sys, libcst
for name in open(sys.argv[1]).read().splitlines():
    try:
        libcst.parse_module(open(name, "rb").read())
    except Exception:
        pass
"""

# Which files aiperf-lint would parse (its trigger prefilter, all rules on).
_PARSED_FILES = """
import sys
from aiperf_lint import engine, registry
rules = registry.all_rules()
for name in open(sys.argv[1]).read().splitlines():
    data = open(name, "rb").read()
    if engine.active_rules(data, rules) and not engine.SKIP_FILE.search(data):
        print(name)
"""


@dataclass
class Row:
    label: str
    files: int
    runs: int
    wall: float | None  # median seconds; None when skipped
    rss_mb: float | None
    cpu: float | None = None  # median CPU seconds (all processes): robust to a busy machine
    note: str = ""
    source_mb: float = 0.0  # size of the files (growth lines: cost per MB, not per file)

    def cells(self) -> list[str]:
        if self.wall is None:
            return [self.label, str(self.files), "-", "-", "-", "-", "-", self.note]
        rate = self.files / self.wall if self.wall > 0 else float("inf")
        rss = f"{self.rss_mb:.0f}" if self.rss_mb is not None else "-"
        return [
            self.label,
            str(self.files),
            str(self.runs),
            f"{self.wall:.2f}",
            f"{rate:.0f}",
            f"{self.cpu:.2f}" if self.cpu is not None else "-",
            rss,
            self.note,
        ]


# ---------------------------------------------------------------- corpus


def corpus_files() -> list[Path]:
    files: list[Path] = []
    for package in CORPUS_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            files.extend(sorted(Path(location).rglob("*.py")))
    return files


def sample(files: list[Path], count: int) -> list[Path]:
    """`count` files spread evenly over the sorted corpus (deterministic)."""
    if count >= len(files):
        return list(files)
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


# ---------------------------------------------------------------- measuring


def measure(command: list[str], runs: int, env: dict | None = None) -> tuple[float, float, float]:
    """(median wall seconds, median peak RSS MB, median CPU seconds) of `runs` fresh runs."""
    walls, peaks, cpus = [], [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *command],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        result = json.loads(out.stdout)
        if result["rc"] not in (0, 1):
            raise RuntimeError(f"{command[:4]}... exited {result['rc']}: {result['stderr']}")
        walls.append(result["wall"])
        peaks.append(result["rss_kb"] / 1024)
        cpus.append(result["cpu"])
    return statistics.median(walls), statistics.median(peaks), statistics.median(cpus)


def aiperf(files: list[Path], jobs: int, cache_dir: Path | None) -> list[str]:
    command = [sys.executable, "-m", "aiperf_lint", "check", "--select", "ALL"]
    command += ["--exit-zero", "-q", "-j", str(jobs)]
    command += ["--no-cache"] if cache_dir is None else ["--cache-dir", str(cache_dir)]
    return command + [str(f) for f in files]


def write_list(files: list[Path], directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("".join(f"{f}\n" for f in files))
    return path


def parsed_subset(files: list[Path], work: Path) -> list[Path]:
    listing = write_list(files, work, "all.txt")
    out = subprocess.run(
        [sys.executable, "-c", _PARSED_FILES, str(listing)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [Path(line) for line in out.stdout.splitlines() if line]


def torchfix_command() -> tuple[list[str] | None, str]:
    exe = TORCHFIX_VENV / "bin" / "torchfix"
    if not exe.exists():
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(TORCHFIX_VENV)
            subprocess.run(
                [str(TORCHFIX_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "torchfix"],
                check=True,
                capture_output=True,
                timeout=900,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(TORCHFIX_VENV, ignore_errors=True)
            return None, f"TorchFix unavailable (pip install torchfix failed: {type(exc).__name__})"
    # One process, like the aiperf-lint line it is compared with (TorchFix's
    # default is one worker per core).
    return [str(exe), "--select", "ALL", "-j", "1"], ""


def ruff_command() -> list[str] | None:
    candidate = Path(sys.executable).parent / "ruff"
    exe = str(candidate) if candidate.exists() else shutil.which("ruff")
    if exe is None:
        return None
    return [exe, "check", "--select", RUFF_SELECT, "--no-cache", "--exit-zero", "-q"]


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    files = corpus_files()
    if not files:
        raise SystemExit("bench: none of torch, pandas, numpy is installed: no corpus")
    if args.tiny:  # small files only: a smoke test, not a measurement
        files = sample([f for f in files if f.stat().st_size < 16_000], 32)
    elif args.files:
        files = sample(files, args.files)
    runs = 1 if args.tiny else args.runs
    cores = os.cpu_count() or 1
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aiperf-bench-") as tmp:
        work = Path(tmp)
        n = len(files)
        cold1 = Row("aiperf-lint cold, 1 job", n, runs, *measure(aiperf(files, 1, None), runs))
        coldn = Row(
            f"aiperf-lint cold, {cores} jobs", n, runs, *measure(aiperf(files, cores, None), runs)
        )
        cache_dir = work / "cache"
        measure(aiperf(files, cores, cache_dir), 1)  # fill the cache
        warm1 = Row("aiperf-lint warm, 1 job", n, runs, *measure(aiperf(files, 1, cache_dir), runs))
        warmn = Row(
            f"aiperf-lint warm, {cores} jobs",
            n,
            runs,
            *measure(aiperf(files, cores, cache_dir), runs),
        )
        rows += [cold1, coldn, warm1, warmn]

        parsed = parsed_subset(files, work)
        listing = write_list(parsed, work, "parsed.txt")
        floor = Row(
            "libcst.parse_module floor, 1 process",
            len(parsed),
            runs,
            *measure([sys.executable, "-c", _PARSE_FLOOR, str(listing)], runs),
            note="the files aiperf-lint parses",
        )
        rows.append(floor)

        ruff = ruff_command()
        ruff_row = (
            Row("ruff " + RUFF_SELECT, n, runs, *measure(ruff + [str(f) for f in files], runs))
            if ruff
            else Row("ruff", n, 0, None, None, note="ruff not found: skipped")
        )
        rows.append(ruff_row)

        tf_files = sample(files, min(args.torchfix_files, n))
        tf_command, why = (
            (None, "skipped (--no-torchfix)") if args.no_torchfix else torchfix_command()
        )
        if tf_command is None:
            tf_row = Row("TorchFix --select ALL, 1 job", len(tf_files), 0, None, None, note=why)
            tf_ours = None
        else:
            tf_row = Row(
                "TorchFix --select ALL, 1 job",
                len(tf_files),
                runs,
                *measure(tf_command + [str(f) for f in tf_files], runs),
                note="sample",
            )
            tf_ours = Row(
                "aiperf-lint cold, 1 job (TorchFix sample)",
                len(tf_files),
                runs,
                *measure(aiperf(tf_files, 1, None), runs),
                note="same sample",
            )
        rows.append(tf_row)
        if tf_ours is not None:
            rows.append(tf_ours)

        growth = []
        for factor in (1, 2, 4):
            subset = sample(files, max(1, n * factor // 4))
            source_mb = sum(f.stat().st_size for f in subset) / 1e6
            growth.append(
                Row(
                    f"growth {factor}x: cold, {cores} jobs",
                    len(subset),
                    runs,
                    *measure(aiperf(subset, cores, None), runs),
                    note=f"{source_mb:.2f} MB of source",
                    source_mb=source_mb,
                )
            )
        rows += growth

    notes += ratios_and_targets(cold1, coldn, warmn, floor, ruff_row, tf_row, tf_ours, growth)
    return rows, notes


def ratios_and_targets(cold1, coldn, warmn, floor, ruff_row, tf_row, tf_ours, growth) -> list[str]:
    lines = []
    if floor.wall:
        ratio = cold1.wall / floor.wall
        cpu_ratio = cold1.cpu / floor.cpu if floor.cpu else float("nan")
        lines.append(
            f"aiperf-lint cold 1 job / parse floor: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU "
            f"(target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})"
        )
    if ruff_row.wall:
        lines.append(
            f"aiperf-lint cold {coldn.label.split(', ')[1]} / ruff: {coldn.wall / ruff_row.wall:.0f}x slower"
        )
    if tf_row.wall and tf_ours is not None and tf_ours.wall:
        speedup = tf_row.wall / tf_ours.wall
        cpu = f", {tf_row.cpu / tf_ours.cpu:.1f}x CPU" if tf_row.cpu and tf_ours.cpu else ""
        lines.append(
            f"TorchFix / aiperf-lint cold (same {tf_row.files} files, 1 job each): "
            f"{speedup:.1f}x wall{cpu} (target >= 10x: {'met' if speedup >= 10 else 'NOT met'})"
        )
    lines.append(
        f"warm, all jobs: {warmn.wall:.2f} s for {warmn.files} files "
        f"(target < 1 s: {'met' if warmn.wall < 1 else 'NOT met'})"
    )
    peak = max(r.rss_mb for r in (cold1, coldn, warmn) if r.rss_mb is not None)
    lines.append(f"peak RSS: {peak:.0f} MB (target < 400 MB: {'met' if peak < 400 else 'NOT met'})")
    # Marginal CPU per added MB of source (start-up cost cancels; file sizes
    # are heavy-tailed, so per file would compare different mixes): equal = linear.
    steps = [
        (b.cpu - a.cpu) / (b.source_mb - a.source_mb)
        for a, b in itertools.pairwise(growth)
        if b.source_mb > a.source_mb
    ]
    if len(steps) == 2 and min(steps) > 0:
        lines.append(
            "growth: CPU per added MB of source 1x->2x "
            f"{steps[0]:.1f} s, 2x->4x {steps[1]:.1f} s "
            f"(ratio {steps[1] / steps[0]:.2f}; linear if close to 1)"
        )
    return lines


def format_table(rows: list[Row]) -> str:
    header = ["measurement", "files", "runs", "wall s", "files/s", "CPU s", "peak RSS MB", "note"]
    body = [header] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in body]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores {model}, Python {sys.version.split()[0]}, "
        f"load average at start {load:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="32 files, 1 run (CI smoke test)")
    parser.add_argument("--runs", type=int, default=3, help="runs per line (median)")
    parser.add_argument("--files", type=int, help="use an evenly spread sample of this many files")
    parser.add_argument("--torchfix-files", type=int, default=130, help="TorchFix sample size")
    parser.add_argument("--no-torchfix", action="store_true", help="skip TorchFix")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}", flush=True)
    rows, notes = run(args)
    print(format_table(rows))
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
