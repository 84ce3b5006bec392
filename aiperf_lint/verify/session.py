"""One ``aiperf-lint verify`` run: find pairs, measure each, report, write evidence files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiperf_lint.verify import machine, report
from aiperf_lint.verify.fixcheck import check_fix
from aiperf_lint.verify.measure import Options, mark_error, mark_skipped, measure_pair, new_entry
from aiperf_lint.verify.pairs import Pair, PairConfigError, discover, is_pair_dir, load_pair
from aiperf_lint.verify.progress import ProgressLine
from aiperf_lint.verify.results import results_path, write_results

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULTS = {"repeat": 7, "min_time": 0.05}
CHECK_ONLY_DEFAULTS = {"repeat": 3, "min_time": 0.005}  # CI: machinery and equivalence only


class UsageError(Exception):
    """Bad arguments or environment (exit 2), as one line."""


def verify(args: argparse.Namespace) -> int:
    if args.write_results and args.check_only:
        raise UsageError(
            "--write-results records measured claims; it cannot be combined with --check-only"
        )
    roots = args.fixture_dirs or [_default_fixtures_dir()]
    results_dir = _results_dir(roots) if args.write_results else None
    pairs = _select(_load_pairs(roots), args.rule)
    device, device_name = _resolve_device(args.device, pairs)
    options = _options(args, device)
    progress = ProgressLine(sys.stderr)
    entries = _verify_all(pairs, args, options, progress)
    progress.clear()
    exit_code = EXIT_OK if all(entry["passed"] for entry in entries) else EXIT_FAILED
    document = report.build_document(
        entries,
        machine.machine_info(device, device_name),
        _settings(args, options),
        _command_line(args),
        exit_code,
    )
    _emit(document, args.format)
    if args.report:
        _write_report(document, args.report, sweep=args.sweep)
    if results_dir is not None:
        path = write_results(
            document, results_path(results_dir, machine.device_slug(device, device_name))
        )
        print(f"wrote {path}", file=sys.stderr)
    return exit_code


def _default_fixtures_dir() -> Path:
    path = Path("fixtures")
    if not path.is_dir():
        raise UsageError(f"no fixtures/ directory in {Path.cwd()}; pass FIXTURE_DIR arguments")
    return path


def _load_pairs(roots: list[Path]) -> list[Pair | tuple[Path, str]]:
    """Pairs, or (path, reason) for a pair dir whose metadata is broken (reported, not fatal)."""
    try:
        directories = discover(roots)
    except PairConfigError as exc:
        raise UsageError(str(exc)) from None
    loaded: list[Pair | tuple[Path, str]] = []
    for directory in directories:
        try:
            loaded.append(load_pair(directory))
        except PairConfigError as exc:
            loaded.append((directory, str(exc)))
    return loaded


def _select(pairs: list, rule_codes: str | None) -> list:
    if not rule_codes:
        return pairs
    wanted = [code.strip().upper() for code in rule_codes.split(",") if code.strip()]
    chosen = [p for p in pairs if any(_rule_of(p).upper().startswith(code) for code in wanted)]
    if not chosen:
        raise UsageError(f"no fixture pair for --rule {rule_codes}")
    return chosen


def _rule_of(pair: Pair | tuple[Path, str]) -> str:
    return pair.rule if isinstance(pair, Pair) else pair[0].name.split("_")[0]


def _resolve_device(choice: str, pairs: list) -> tuple[str, str | None]:
    uses_torch = any({"torch", "cuda"} & set(p.requires) for p in pairs if isinstance(p, Pair))
    if choice == "cpu" or (choice == "auto" and not uses_torch):
        return "cpu", None  # no pair can use a GPU: skip the slow torch import of the probe
    probe = machine.probe_cuda()
    if probe["cuda"]:
        return "cuda", probe["device_name"]
    if choice == "cuda":
        raise UsageError(
            f"--device cuda, but torch sees no CUDA GPU ({probe.get('reason', 'is_available() is False')})"
        )
    return "cpu", None


def _options(args: argparse.Namespace, device: str) -> Options:
    defaults = CHECK_ONLY_DEFAULTS if args.check_only else DEFAULTS
    return Options(
        device=device,
        repeat=args.repeat or defaults["repeat"],
        min_time_s=args.min_time if args.min_time is not None else defaults["min_time"],
        memory_cap_mib=_memory_cap(args.memory_cap),
        timeout_s=args.timeout,
        check_only=args.check_only,
    )


def _memory_cap(requested: int | None) -> int:
    if requested is None:
        return machine.total_memory_mib() // 2  # two children are alive at once
    return max(0, requested)


def _verify_all(
    pairs: list, args: argparse.Namespace, options: Options, progress: ProgressLine
) -> list[dict]:
    plan = [(pair, label, size) for pair in pairs for label, size in _sizes(pair, args)]
    fix_results: dict[str, tuple[str, str]] = {}
    entries: list[dict] = []
    for index, (pair, label, size) in enumerate(plan, start=1):
        if not isinstance(pair, Pair):
            entries.append(_broken_pair_entry(pair, options.device))
            continue
        progress.set_prefix(f"[{index}/{len(plan)}] {pair.name} n={size}")
        if pair.name not in fix_results:  # static check: once per pair, not per size
            fix_results[pair.name] = check_fix(pair)
        entries.append(
            _verify_one(
                pair,
                new_entry(pair, label, size, options.device),
                fix_results[pair.name],
                options,
                progress,
            )
        )
    return entries


def _verify_one(
    pair: Pair, entry: dict, fix_result: tuple[str, str], options: Options, progress: ProgressLine
) -> dict:
    reason = skip_reason(pair, options.device)
    if reason:
        mark_skipped(entry, reason)
    else:
        measure_pair(pair, entry, options, progress.update)
    entry["fix_match"], entry["fix_note"] = fix_result
    if entry["fix_match"] in ("no", "error"):
        entry["passed"] = False  # after.py must be exactly what --fix produces
    return entry


def _sizes(pair: Pair | tuple[Path, str], args: argparse.Namespace) -> list[tuple[str, int]]:
    if not isinstance(pair, Pair):
        return [("-", 0)]  # broken pair.toml: no size to resolve
    if args.sweep and pair.sweep:
        return [(str(size), size) for size in pair.sweep]
    return [(args.size, pair.size_for(args.size))]


def _broken_pair_entry(broken: tuple[Path, str], device: str) -> dict:
    path, reason = broken
    entry = new_entry(Pair(path=path, rule=_rule_of(broken)), "-", 0, device)
    mark_error(entry, reason.removeprefix(f"{path.name}: "))  # the table names the pair
    return entry


def skip_reason(pair: Pair, device: str) -> str | None:
    """Pairs that cannot run here are skipped, never run on the wrong device."""
    if "cuda" in pair.requires and device != "cuda":
        return "needs CUDA"
    missing = [name for name in pair.requires if name != "cuda" and not machine.has_package(name)]
    return f"needs {', '.join(missing)}" if missing else None


def _settings(args: argparse.Namespace, options: Options) -> dict:
    return {
        "size": args.size,
        "sweep": args.sweep,
        "repeat": options.repeat,
        "min_time_s": options.min_time_s,
        "timeout_s_override": options.timeout_s,
        "memory_cap_mib": options.memory_cap_mib,
        "check_only": options.check_only,
        "rules": args.rule,
    }


def _command_line(args: argparse.Namespace) -> list[str]:
    """The run as one canonical, re-runnable command, however it was invoked."""
    command = ["aiperf-lint", "verify", *(str(path) for path in args.fixture_dirs)]
    for flag in ("rule", "device", "size", "repeat", "min_time", "timeout", "memory_cap", "report"):
        value = getattr(args, flag)
        if value is not None:
            command += ["--" + flag.replace("_", "-"), str(value)]
    for flag in ("sweep", "check_only", "write_results"):
        if getattr(args, flag):
            command.append("--" + flag.replace("_", "-"))
    if args.format != "text":
        command += ["--format", args.format]
    return command


def _emit(document: dict, output_format: str) -> None:
    render = {
        "text": report.render_text,
        "json": report.to_json,
        "markdown": report.render_markdown,
    }
    sys.stdout.write(render[output_format](document))


def _write_report(document: dict, directory: Path, sweep: bool) -> None:
    from aiperf_lint.verify.plots import PlotUnavailable, chart_before_after, sweep_plot

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(report.to_json(document), encoding="utf-8")
    (directory / "results.md").write_text(report.render_markdown(document), encoding="utf-8")
    try:
        chart_before_after(document, directory / "chart.png")
        if sweep:
            for pair_name, entries in _by_pair(document["pairs"]).items():
                sweep_plot(
                    entries,
                    report.device_label(document["machine"]),
                    directory / f"sweep-{pair_name}.png",
                )
    except PlotUnavailable as exc:
        print(f"aiperf-lint verify: {exc}", file=sys.stderr)
    print(f"wrote report to {directory}", file=sys.stderr)


def _by_pair(entries: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for entry in entries:
        grouped.setdefault(entry["pair"], []).append(entry)
    return grouped


def _results_dir(roots: list[Path]) -> Path:
    """Where RESULTS-<device>.json lives: the fixtures directory the pairs came from."""
    parents = {(root.parent if is_pair_dir(root) else root).resolve() for root in roots}
    if len(parents) != 1:
        raise UsageError("--write-results needs pairs from a single fixtures directory")
    return parents.pop()
