"""Find the files to lint: walk directories, honour excludes and .gitignore.

Explicitly named files are always checked (even if excluded or ignored),
like ruff and flake8.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiperf_lint.config import Settings

SOURCE_SUFFIXES = (".py",)
NOTEBOOK_SUFFIXES = (".ipynb",)


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


@dataclass
class _IgnoreRule:
    regex: re.Pattern
    negate: bool
    dir_only: bool


class GitIgnore:
    """The subset of gitignore syntax real repositories use."""

    def __init__(self, base: Path, lines: list[str]) -> None:
        self.base = base.absolute()
        self.rules = [r for r in (_compile(line) for line in lines) if r is not None]

    @classmethod
    def load(cls, directory: Path) -> GitIgnore | None:
        path = directory / ".gitignore"
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        return cls(directory, text.splitlines())

    def ignored(self, path: Path, is_dir: bool) -> bool | None:
        """True/False when a rule decides, None when none matches."""
        try:
            rel = path.absolute().relative_to(self.base).as_posix()
        except ValueError:
            return None
        verdict = None
        for rule in self.rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(rel):
                verdict = not rule.negate
        return verdict


def _compile(line: str) -> _IgnoreRule | None:
    line = line.rstrip()
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.strip("/") if dir_only else line
    anchored = "/" in line.rstrip("/")
    line = line.lstrip("/")
    pattern = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if line.startswith("**/", i):
            pattern += "(?:.*/)?"
            i += 3
            continue
        if line.startswith("**", i):
            pattern += ".*"
            i += 2
            continue
        pattern += {"*": "[^/]*", "?": "[^/]"}.get(ch, re.escape(ch))
        i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return _IgnoreRule(re.compile(f"^{prefix}{pattern}$"), negate, dir_only)


def discover(paths: list[str], settings: Settings, include_notebooks: bool = True) -> Discovery:
    result = Discovery()
    suffixes = SOURCE_SUFFIXES + (NOTEBOOK_SUFFIXES if include_notebooks else ())
    seen: set[object] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_symlink() and not path.exists():
            result.errors.append((raw, _bad_link_reason(path)))
            continue
        if not path.exists():
            result.errors.append((raw, "no such file or directory"))
            continue
        if not path.is_dir():  # a file, or a FIFO/device the runner refuses clearly
            _add(result, seen, path)
            continue
        for file in _walk(path, settings, suffixes, result):
            _add(result, seen, file)
    return result


def _add(result: Discovery, seen: set[object], path: Path) -> None:
    # The same file named twice (or through a symlink) is linted once. One stat
    # gives its identity; resolve() would lstat every path component (a quarter
    # of a warm run over 4,000 files).
    key: object
    try:
        stat = os.stat(path)
        key = (stat.st_dev, stat.st_ino)
    except OSError:
        key = path.absolute()
    if key not in seen:
        seen.add(key)
        result.files.append(path)


def _walk(top: Path, settings: Settings, suffixes, result: Discovery) -> Iterator[Path]:
    ignores = _parent_gitignores(top)
    visited: set[tuple[int, int]] = set()

    def walk(directory: Path, ignores: list[GitIgnore]) -> Iterator[Path]:
        try:
            stat = directory.stat()
        except OSError as exc:
            result.errors.append((str(directory), exc.strerror or "cannot read directory"))
            return
        if (stat.st_dev, stat.st_ino) in visited:  # symlink loop
            return
        visited.add((stat.st_dev, stat.st_ino))
        local = GitIgnore.load(directory)
        if local is not None:
            ignores = [*ignores, local]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            result.errors.append((str(directory), exc.strerror or "cannot read directory"))
            return
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if settings.is_excluded(path) or _gitignored(path, is_dir, ignores):
                continue
            if is_dir:
                if (path / "pyvenv.cfg").exists():  # an unconventionally named virtualenv
                    continue
                yield from walk(path, ignores)
            elif entry.name.endswith(suffixes):
                if entry.is_symlink() and not path.exists():
                    result.errors.append((str(path), _bad_link_reason(path)))
                    continue
                yield path

    yield from walk(top, ignores)


def _bad_link_reason(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
    return "broken symbolic link"


def _gitignored(path: Path, is_dir: bool, ignores: list[GitIgnore]) -> bool:
    verdict = False
    for ignore in ignores:
        decided = ignore.ignored(path, is_dir)
        if decided is not None:
            verdict = decided
    return verdict


def _parent_gitignores(top: Path) -> list[GitIgnore]:
    """.gitignore files above `top`, up to the repository root."""
    out: list[GitIgnore] = []
    for directory in top.absolute().parents:
        ignore = GitIgnore.load(directory)
        if ignore is not None:
            out.insert(0, ignore)
        if (directory / ".git").exists():
            break
    else:
        return []
    return out
