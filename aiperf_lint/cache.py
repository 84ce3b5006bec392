"""Content-hash cache of per-file lint results (`.aiperf_lint_cache/` at the project root).

An entry's key hashes everything a file's result depends on: the file's bytes,
its path (rules may look at it), the codes enabled for it, the settings, the
tool version and the source of the engine and of every rule module (editing a
rule invalidates the cache), Python's and LibCST's versions. Entries live in one
directory per "namespace" (everything but the file), one JSON file per entry,
written atomically (temp file + `os.replace`), so concurrent runs never see a
torn entry; an entry that cannot be read back is a miss.

Stat fast path: a per-namespace index remembers, per path, the file's
(device, inode, size, mtime, ctime) and its content key, so an unchanged tree
is checked without reading or hashing any file. Like git's index it refuses
"racy" entries: a file modified within `RACY_SECONDS` of being hashed is
hashed again next time, because a second write inside the same timestamp tick
would leave its stat unchanged.

Only plain lint results are stored. `--fix`/`--diff` runs use a cached "no
findings" entry to skip a file and record such entries, nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aiperf_lint import __version__, fileio
from aiperf_lint.model import FileError, FileResult, Finding, TextEdit

if TYPE_CHECKING:
    from aiperf_lint.config import Settings
    from aiperf_lint.runner import LintOptions

CACHE_DIR_NAME = ".aiperf_lint_cache"
FORMAT = 1
RACY_SECONDS = 2.0
STALE_NAMESPACE_DAYS = 7
INDEX_NAME = "stat-index.json"
# Settings fields that only decide which files are linted, not what a file's result is.
_NOT_RESULT_SETTINGS = {"root", "config_path", "exclude", "extend_exclude"}
# FileError kinds that depend on the environment rather than on the bytes.
_UNCACHEABLE_ERRORS = {"io", "internal"}


class Cache:
    """One namespace of the cache. Picklable: workers store their own entries."""

    def __init__(self, directory: Path, namespace: str) -> None:
        self.directory = directory
        self.namespace = namespace
        self.entries = directory / namespace
        self._index: dict[str, list] | None = None
        self._index_changed = False

    def __getstate__(self) -> dict:
        return {"directory": self.directory, "namespace": self.namespace}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"], state["namespace"])  # type: ignore[misc]

    # ------------------------------------------------------------ keys

    def key(self, name: str, codes: frozenset[str], data: bytes) -> str:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(f"{self.namespace}\0{name}\0{','.join(sorted(codes))}\0".encode())
        digest.update(data)
        return digest.hexdigest()

    # ------------------------------------------------------------ entries

    def get(self, key: str) -> FileResult | None:
        try:
            with open(self.entries / f"{key}.json", encoding="utf-8") as handle:
                return _result_from_json(json.load(handle))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None  # missing, torn or from an incompatible build: a miss

    def put(self, key: str, result: FileResult) -> None:
        if not cacheable(result):
            return
        data = json.dumps(_result_to_json(result), separators=(",", ":")).encode()
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs speed
            _atomic_write(self.entries / f"{key}.json", data)

    # ------------------------------------------------------------ stat index

    def index(self) -> dict[str, list]:
        if self._index is None:
            try:
                with open(self.entries / INDEX_NAME, encoding="utf-8") as handle:
                    loaded = json.load(handle)
                self._index = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._index = {}
        return self._index

    def known_key(self, name: str, stat: os.stat_result) -> tuple[str, bool] | None:
        """(content key, clean) recorded for this path with this exact stat."""
        entry = self.index().get(name)
        if not isinstance(entry, list) or len(entry) != 7 or entry[:5] != _stat_tuple(stat):
            return None
        return entry[5], entry[6]

    def remember(self, name: str, stat: os.stat_result, key: str, clean: bool) -> None:
        if time.time() - stat.st_mtime < RACY_SECONDS:
            return  # racy: a same-tick rewrite would keep this stat
        self.index()[name] = [*_stat_tuple(stat), key, clean]
        self._index_changed = True

    def save_index(self) -> None:
        if not self._index_changed or self._index is None:
            return
        data = json.dumps(self._index, separators=(",", ":")).encode()
        try:
            _atomic_write(self.entries / INDEX_NAME, data)
            self._index_changed = False
        except OSError:
            pass

    # ------------------------------------------------------------ runner hooks

    def lookup(self, path: Path, options: LintOptions) -> tuple[FileResult | None, Pending | None]:
        """A cached result for path, else what to remember once it is linted."""
        name = str(path)
        try:
            stat = os.stat(path)
        except OSError:
            return None, None  # the linter reports the problem
        codes = options.settings.codes_for(path, options.codes)
        known = self.known_key(name, stat)
        if known is not None:
            key, clean = known
            if clean:
                return FileResult(name, parsed=False), None
            if not options.fix:
                hit = self.get(key)
                if hit is not None and hit.path == name:
                    return hit, None
            return None, None
        try:
            data = fileio.read_bytes(path)  # never blocks on a FIFO
        except OSError:
            return None, None
        key = self.key(name, codes, data)
        hit = self.get(key)
        if hit is not None and hit.path == name and (is_clean(hit) or not options.fix):
            self.remember(name, stat, key, is_clean(hit))
            return hit, None
        return None, Pending(name, stat, key)

    def record(self, pending: Pending, result: FileResult) -> None:
        """After a miss was linted: index it if the run stored an entry for it."""
        if cacheable(result) and result.fixed_text is None:
            self.remember(pending.name, pending.stat, pending.key, is_clean(result))


@dataclasses.dataclass
class Pending:
    name: str
    stat: os.stat_result
    key: str


def cacheable(result: FileResult) -> bool:
    return not any(e.kind in _UNCACHEABLE_ERRORS for e in result.errors)


def is_clean(result: FileResult) -> bool:
    return not result.findings and not result.errors


def store_result(options: LintOptions, path: Path, data: bytes, result: FileResult) -> None:
    """Called where a file was linted (worker or main process)."""
    cache = options.cache
    if cache is None or result.fixed_text is not None:
        return
    if options.fix and not is_clean(result):
        return  # findings left after fixing are not a plain lint result
    if options.keep is not None and not is_clean(result):
        return
    codes = options.settings.codes_for(path, options.codes)
    cache.put(cache.key(str(path), codes, data), result)


# ---------------------------------------------------------------- opening


def open_cache(
    settings: Settings, codes: frozenset[str], directory: Path | None = None
) -> Cache | None:
    """The cache for this configuration, or None when its directory cannot be created."""
    base = directory if directory is not None else settings.root / CACHE_DIR_NAME
    namespace = namespace_for(settings, codes)
    cache = Cache(base, namespace)
    fresh = not cache.entries.is_dir()
    try:
        cache.entries.mkdir(parents=True, exist_ok=True)
        _mark_cache_dir(base)
        os.utime(cache.entries)  # in use: keeps it from being pruned
    except OSError:
        return None
    if fresh:
        _prune_stale_namespaces(base, keep=namespace)
    return cache


def namespace_for(settings: Settings, codes: frozenset[str]) -> str:
    import libcst

    digest = hashlib.blake2b(digest_size=12)
    parts = [
        f"format={FORMAT}",
        f"aiperf-lint={__version__}",
        f"python={sys.version_info[:2]}",
        f"libcst={getattr(libcst, '__version__', '') or _libcst_version()}",
        f"codes={','.join(sorted(codes))}",
        f"settings={_settings_fingerprint(settings)}",
        f"code={code_digest()}",
    ]
    digest.update("\n".join(parts).encode())
    return digest.hexdigest()


def code_digest() -> str:
    """Hash of the engine's and the rules' source: editing either invalidates."""
    import aiperf_lint
    import aiperf_lint.rules

    digest = hashlib.blake2b(digest_size=16)
    for package in (aiperf_lint, aiperf_lint.rules):
        for directory in package.__path__:
            for file in sorted(Path(directory).glob("*.py")):
                digest.update(file.name.encode())
                try:
                    digest.update(file.read_bytes())
                except OSError:
                    digest.update(b"<unreadable>")
    return digest.hexdigest()


def _libcst_version() -> str:
    try:
        from libcst._version import __version__ as version

        return str(version)
    except ImportError:  # pragma: no cover
        return "unknown"


def _settings_fingerprint(settings: Settings) -> str:
    fields = {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if f.name not in _NOT_RESULT_SETTINGS
    }
    return json.dumps(fields, sort_keys=True, default=repr)


def _mark_cache_dir(base: Path) -> None:
    """A `.gitignore` of `*` (so the cache is never committed) and a CACHEDIR.TAG."""
    gitignore = base / ".gitignore"
    if not gitignore.exists():
        _atomic_write(gitignore, b"# Created by aiperf-lint automatically.\n*\n")
    tag = base / "CACHEDIR.TAG"
    if not tag.exists():
        _atomic_write(
            tag,
            b"Signature: 8a477f597d28d172789f06886806bc55\n"
            b"# This file is a cache directory tag created by aiperf-lint.\n",
        )


def _prune_stale_namespaces(base: Path, keep: str) -> None:
    """Remove other namespaces unused for a week (old rule sources or settings)."""
    cutoff = time.time() - STALE_NAMESPACE_DAYS * 86400
    try:
        children = list(os.scandir(base))
    except OSError:
        return
    for child in children:
        try:
            if child.name != keep and child.is_dir() and child.stat().st_mtime < cutoff:
                shutil.rmtree(child.path, ignore_errors=True)
        except OSError:
            continue


# ---------------------------------------------------------------- storage


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stat_tuple(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _result_to_json(result: FileResult) -> dict:
    return {
        "path": result.path,
        "parsed": result.parsed,
        "findings": [dataclasses.asdict(f) for f in result.findings],
        "errors": [dataclasses.asdict(e) for e in result.errors],
    }


def _result_from_json(data: dict) -> FileResult:
    findings = []
    for raw in data["findings"]:
        edits = [_edit_from_json(e) for e in raw.pop("edits")]
        findings.append(Finding(**raw, edits=edits))
    errors = [FileError(**raw) for raw in data["errors"]]
    return FileResult(data["path"], findings=findings, errors=errors, parsed=data["parsed"])


def _edit_from_json(raw: dict) -> TextEdit:
    for name in ("location", "end_location"):
        if raw.get(name) is not None:
            raw[name] = tuple(raw[name])
    return TextEdit(**raw)
