"""Lint (and fix) files, in parallel, each failure contained to its file."""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiperf_lint import cache as result_cache
from aiperf_lint import engine, fileio, fixer, registry
from aiperf_lint.cache import Cache
from aiperf_lint.config import Settings
from aiperf_lint.model import FileError, FileResult, Finding

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 8


@dataclass
class LintOptions:
    codes: frozenset[str]
    settings: Settings
    fix: bool = False
    unsafe_fixes: bool = False
    write: bool = True  # False with --diff: compute fixes, write nothing
    debug: bool = False
    # Optional finding filter (e.g. only changed lines); must be picklable.
    keep: Callable[[Finding], bool] | None = None
    extra: dict = field(default_factory=dict)
    cache: Cache | None = None  # None: --no-cache


def rules_for(codes: Iterable[str]) -> list:
    by_code = registry.rules_by_code()
    return [by_code[c] for c in sorted(codes) if c in by_code]


def lint_path(path: Path, options: LintOptions) -> FileResult:
    """Never raises: every problem becomes a FileError on the result."""
    name = str(path)
    try:
        data = fileio.read_bytes(path)
    except IsADirectoryError:
        return FileResult(name, errors=[FileError(name, "is a directory", kind="io")])
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return FileResult(name, errors=[FileError(name, f"cannot read file: {reason}", kind="io")])
    result = _lint_read_bytes(data, path, options)
    result_cache.store_result(options, path, data, result)
    return result


def _lint_read_bytes(data: bytes, path: Path, options: LintOptions) -> FileResult:
    name = str(path)
    try:
        return lint_bytes(data, path, options)
    except engine.LintError as exc:
        return FileResult(name, errors=[exc.error])
    except RecursionError:
        return FileResult(
            name, errors=[FileError(name, "expression nesting too deep to analyse", kind="syntax")]
        )
    except Exception as exc:  # engine bug: report it, keep going
        return FileResult(
            name,
            errors=[
                FileError(
                    name,
                    f"internal error: {type(exc).__name__}: {exc}".splitlines()[0],
                    kind="internal",
                    traceback=traceback.format_exc(),
                )
            ],
        )


def lint_bytes(data: bytes, path: Path, options: LintOptions) -> FileResult:
    name = str(path)
    if path.suffix == ".ipynb":
        from aiperf_lint import notebook

        return notebook.lint_notebook(data, path, options)
    codes = options.settings.codes_for(path, options.codes)
    if engine.SKIP_FILE.search(data):
        return FileResult(name)
    rules = engine.active_rules(data, rules_for(codes))
    if not rules:
        return FileResult(name)
    source = engine.decode(data, name)
    result = lint_source_text(source.text, rules, name, options)
    if result.fixed_text is not None and options.write:
        try:
            fileio.atomic_write(path, engine.encode(source, result.fixed_text), fileio.digest(data))
        except fileio.ChangedOnDisk:
            result.errors.append(
                FileError(name, "file changed on disk while fixing; not written", kind="io")
            )
            result.fixed_text = None
        except OSError as exc:
            result.errors.append(FileError(name, f"cannot write fixes: {exc.strerror}", kind="io"))
            result.fixed_text = None
    return result


def lint_source_text(text: str, rules, name: str, options: LintOptions) -> FileResult:
    """Lint (and with options.fix, fix) one decoded source text."""
    result = FileResult(name, parsed=True)
    if options.fix:
        outcome = fixer.fix_text(text, rules, name, options.unsafe_fixes, options.keep)
        result.findings, result.errors = outcome.findings, outcome.errors
        if outcome.text != text:
            result.original_text, result.fixed_text = text, outcome.text
            result.fixes_applied = outcome.applied
    else:
        result.findings, result.errors = engine.lint_text(text, rules, name)
    if options.keep is not None:
        result.findings = [f for f in result.findings if options.keep(f)]
    return result


def run(files: list[Path], options: LintOptions, jobs: int) -> Iterator[FileResult]:
    """Results in the order of `files`: cache hits looked up here, the rest linted
    (in parallel over a process pool when worth it)."""
    cache = options.cache
    if cache is None:
        yield from _lint_all(files, options, jobs)
        return
    looked_up = [cache.lookup(path, options) for path in files]
    fresh = _lint_all([p for p, (hit, _) in zip(files, looked_up) if hit is None], options, jobs)
    try:
        for hit, pending in looked_up:
            if hit is not None:
                yield hit
                continue
            result = next(fresh)
            if pending is not None:
                cache.record(pending, result)
            yield result
    finally:
        fresh.close()
        cache.save_index()


def _lint_all(files: list[Path], options: LintOptions, jobs: int) -> Iterator[FileResult]:
    if jobs <= 1 or len(files) < PARALLEL_THRESHOLD:
        for path in files:
            yield lint_path(path, options)
        return
    # Biggest files first, one at a time to whichever worker is free: no
    # worker is left with a large file at the end while the others idle.
    order = sorted(range(len(files)), key=lambda i: -_size(files[i]))
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with context.Pool(jobs, initializer=_worker_init, initargs=(options,)) as pool:
        done: dict[int, FileResult] = {}
        next_index = 0
        tasks = ((i, files[i]) for i in order)
        for index, result in pool.imap_unordered(_worker_lint_indexed, tasks):
            done[index] = result
            while next_index in done:  # results are small: buffer until in order
                yield done.pop(next_index)
                next_index += 1


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


_WORKER_OPTIONS: LintOptions | None = None


def _worker_init(options: LintOptions) -> None:
    global _WORKER_OPTIONS
    _WORKER_OPTIONS = options
    registry.all_rules()  # import rules once per worker


def _worker_lint(path: Path) -> FileResult:
    assert _WORKER_OPTIONS is not None
    return lint_path(path, _WORKER_OPTIONS)


def _worker_lint_indexed(task: tuple[int, Path]) -> tuple[int, FileResult]:
    index, path = task
    return index, _worker_lint(path)
