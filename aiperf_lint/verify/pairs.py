"""Discover fixture pairs and read their ``pair.toml`` (contract: fixtures/README.md)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiperf_lint.verify import NAMED_SIZES

if sys.version_info >= (3, 11):
    import tomllib
else:  # the core install depends on tomli there
    import tomli as tomllib

FIX_KINDS = ("safe", "unsafe", "none")
METRICS = ("time", "memory")
DEFAULT_TIMEOUT_S = 120.0


class PairConfigError(Exception):
    """A pair directory whose files or metadata break the fixture contract."""


@dataclass(frozen=True)
class Pair:
    path: Path
    rule: str
    summary: str = ""
    fix: str = "none"
    requires: tuple[str, ...] = ()
    timeout_s: float = DEFAULT_TIMEOUT_S
    sizes: dict[str, int] = field(default_factory=dict)
    sweep: tuple[int, ...] = ()
    rtol: float = 1e-9
    atol: float = 0.0
    metric: str = "time"
    min_speedup: float = 1.10
    claim_devices: tuple[str, ...] = ("cpu", "cuda")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def before(self) -> Path:
        return self.path / "before.py"

    @property
    def after(self) -> Path:
        return self.path / "after.py"

    def size_for(self, choice: str) -> int:
        """Resolve ``--size`` (a name or an integer) to this pair's concrete size."""
        if choice.isdigit():
            return int(choice)
        # A size the pair does not declare (e.g. no "large") falls back to the claim size.
        return self.sizes.get(choice, self.sizes["default"])


def is_pair_dir(path: Path) -> bool:
    return (path / "pair.toml").is_file()


def discover(paths: list[Path]) -> list[Path]:
    """Expand each path (a pair dir, or a dir of pair dirs) to a sorted list of pair dirs."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise PairConfigError(f"{path}: not a directory")
        if is_pair_dir(path):
            found.append(path)
            continue
        children = sorted(p for p in path.iterdir() if p.is_dir() and is_pair_dir(p))
        if not children:
            raise PairConfigError(f"{path}: no fixture pairs (directories with pair.toml)")
        found.extend(children)
    return list(dict.fromkeys(found))  # keep order, drop duplicates


def load_pair(path: Path) -> Pair:
    """Read and validate one pair directory; raise PairConfigError with a one-line reason."""
    for name in ("before.py", "after.py"):
        if not (path / name).is_file():
            raise PairConfigError(f"{path.name}: missing {name}")
    try:
        meta = tomllib.loads((path / "pair.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PairConfigError(f"{path.name}: cannot read pair.toml: {exc}") from None
    try:
        return _pair_from_meta(path, meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise PairConfigError(f"{path.name}: bad pair.toml: {exc}") from None


def _pair_from_meta(path: Path, meta: dict) -> Pair:
    sizes_table = meta.get("sizes", {})
    tolerance = meta.get("tolerance", {})
    claim = meta.get("claim", {})
    pair = Pair(
        path=path,
        rule=str(meta["rule"]),
        summary=str(meta.get("summary", "")),
        fix=str(meta.get("fix", "none")),
        requires=tuple(str(r) for r in meta.get("requires", ())),
        timeout_s=float(meta.get("timeout_s", DEFAULT_TIMEOUT_S)),
        sizes={k: int(v) for k, v in sizes_table.items() if k in NAMED_SIZES},
        sweep=tuple(int(s) for s in sizes_table.get("sweep", ())),
        rtol=float(tolerance.get("rtol", 1e-9)),
        atol=float(tolerance.get("atol", 0.0)),
        metric=str(claim.get("metric", "time")),
        min_speedup=float(claim.get("min_speedup", 1.10)),
        claim_devices=tuple(str(d) for d in claim.get("devices", ("cpu", "cuda"))),
    )
    if pair.fix not in FIX_KINDS:
        raise ValueError(f"fix = {pair.fix!r}, expected one of {', '.join(FIX_KINDS)}")
    if pair.metric not in METRICS:
        raise ValueError(f"claim.metric = {pair.metric!r}, expected time or memory")
    if pair.timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    if "default" not in pair.sizes:
        raise ValueError("[sizes] needs default (the size the claim is made at)")
    return pair
