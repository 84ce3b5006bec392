"""`[tool.aiperf-lint]` in the nearest pyproject.toml, merged with the CLI."""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from aiperf_lint import registry

KNOWN_KEYS = {
    "select",
    "ignore",
    "extend-select",
    "exclude",
    "extend-exclude",
    "per-file-ignores",
    "unsafe-fixes",
}

DEFAULT_EXCLUDE = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".env",
    "env",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    ".eggs",
    "*.egg-info",
    "build",
    "dist",
    "site-packages",
    "node_modules",
    ".ipynb_checkpoints",
    ".aiperf_lint_cache",
)


class ConfigError(ValueError):
    """A clear, one-line configuration problem (exit code 2)."""


@dataclass
class Settings:
    root: Path
    config_path: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    extend_select: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDE))
    extend_exclude: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    unsafe_fixes: bool = False

    def enabled_codes(self) -> frozenset[str]:
        return registry.resolve(self.select, self.ignore, self.extend_select)

    def codes_for(self, path: Path, enabled: frozenset[str]) -> frozenset[str]:
        """Enabled codes minus the per-file-ignores matching path."""
        if not self.per_file_ignores:
            return enabled
        rel = _relative(path, self.root)
        dropped = set()
        for pattern, selectors in self.per_file_ignores.items():
            if _glob_match(rel, pattern):
                dropped |= {c for c in enabled for s in selectors if c.startswith(s) or s == "ALL"}
        return enabled - dropped

    def is_excluded(self, path: Path) -> bool:
        """Called for each entry while walking, so a name pattern is matched
        against the entry's own name only: the directories above a path the
        user named (a venv, site-packages) never exclude it."""
        rel = _relative(path, self.root)
        for pattern in self.exclude + self.extend_exclude:
            if "/" in pattern.strip("/"):
                if _glob_match(rel, pattern.strip("/")) or _glob_match(
                    rel, pattern.strip("/") + "/**"
                ):
                    return True
            elif fnmatch.fnmatch(path.name, pattern.strip("/")):
                return True
        return False


def _relative(path: Path, root: Path) -> str:
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: judge the path as written
        resolved = path.absolute()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _glob_match(rel: str, pattern: str) -> bool:
    if fnmatch.fnmatch(rel, pattern):
        return True
    # "tests/*" should also match files in subdirectories, like ruff's globs.
    if pattern.endswith("/**") and rel.startswith(pattern[:-3] + "/"):
        return True
    return "/" not in pattern and fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern)


def find_pyproject(start: Path) -> Path | None:
    current = start.resolve()
    if current.is_file():
        current = current.parent
    for directory in (current, *current.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(start: Path | None = None, config_file: Path | None = None) -> Settings:
    start = start or Path.cwd()
    path = config_file or find_pyproject(start)
    if path is None:
        return Settings(root=Path.cwd())
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({exc.reason})") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: [tool] must be a table")
    section = tool.get("aiperf-lint")
    settings = Settings(root=path.parent, config_path=path)
    if section is None:
        return settings
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.aiperf-lint] must be a table")
    apply_section(settings, section, f"{path} [tool.aiperf-lint]")
    return settings


def apply_section(settings: Settings, section: dict, where: str) -> None:
    unknown = sorted(set(section) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS))})"
        )
    try:
        if "select" in section:
            settings.select = registry.validate_selectors(
                _str_list(section, "select", where), f"{where} select"
            )
        if "ignore" in section:
            settings.ignore = registry.validate_selectors(
                _str_list(section, "ignore", where), f"{where} ignore"
            )
        if "extend-select" in section:
            settings.extend_select = registry.validate_selectors(
                _str_list(section, "extend-select", where), f"{where} extend-select"
            )
        if "per-file-ignores" in section:
            table = section["per-file-ignores"]
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: per-file-ignores must be a table of glob = [codes]")
            settings.per_file_ignores = {
                glob: registry.validate_selectors(
                    _as_list(codes, f"per-file-ignores {glob!r}", where),
                    f"{where} per-file-ignores",
                )
                for glob, codes in table.items()
            }
    except registry.SelectionError as exc:
        raise ConfigError(str(exc)) from None
    if "exclude" in section:
        settings.exclude = _str_list(section, "exclude", where)
    if "extend-exclude" in section:
        settings.extend_exclude = _str_list(section, "extend-exclude", where)
    if "unsafe-fixes" in section:
        if not isinstance(section["unsafe-fixes"], bool):
            raise ConfigError(f"{where}: unsafe-fixes must be true or false")
        settings.unsafe_fixes = section["unsafe-fixes"]


def _str_list(section: dict, key: str, where: str) -> list[str]:
    return _as_list(section[key], key, where)


def _as_list(value, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return list(value)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1
