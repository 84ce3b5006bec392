"""Discover the rules shipped in `aiperf_lint.rules` and resolve selections."""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import lru_cache

from aiperf_lint.rule import Rule

CODE_PATTERN = re.compile(r"^AIP\d{3}$")
SELECTOR_PATTERN = re.compile(r"^(ALL|AIP\d{0,3})$")


class SelectionError(ValueError):
    pass


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    """Every Rule subclass defined in a module of the `aiperf_lint.rules` package."""
    import aiperf_lint.rules as package

    found: dict[str, type[Rule]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Rule)
                and value is not Rule
                and value.__module__ == module.__name__
                and getattr(value, "code", None)
            ):
                if value.code in found:
                    raise RuntimeError(f"duplicate rule code {value.code}")
                found[value.code] = value
    return tuple(found[code] for code in sorted(found))


def rules_by_code() -> dict[str, type[Rule]]:
    return {rule.code: rule for rule in all_rules()}


def get_rule(code: str) -> type[Rule] | None:
    return rules_by_code().get(code.upper())


def validate_selectors(selectors, where: str) -> list[str]:
    """Normalise and check codes/prefixes; unknown ones are an error naming them."""
    out = []
    known = rules_by_code()
    for raw in selectors:
        sel = str(raw).strip().upper()
        if not sel:
            continue
        if not SELECTOR_PATTERN.match(sel):
            raise SelectionError(
                f"{where}: invalid rule selector {raw!r} (expected a code like AIP401, a prefix like AIP4, or ALL)"
            )
        if sel != "ALL" and not any(code.startswith(sel) for code in known):
            raise SelectionError(f"{where}: unknown rule code or prefix {raw!r}")
        out.append(sel)
    return out


def _matches(code: str, selector: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def resolve(select=None, ignore=(), extend_select=()) -> frozenset[str]:
    """Enabled codes, ruff-style: the most specific selector wins.

    Default (no select) is every default-enabled rule. An exact code or `ALL`
    enables opt-in rules too; a prefix like `AIP1` only the default-enabled ones.
    """
    enabled = set()
    selectors = list(select) if select is not None else []
    selectors += list(extend_select)
    for rule in all_rules():
        chosen = [s for s in selectors if _matches(rule.code, s)]
        if select is None and rule.default_enabled:
            chosen.append("AIP")  # the implicit default selection
        if not chosen:
            continue
        best_select = max(chosen, key=_specificity)
        if not rule.default_enabled and best_select not in {"ALL", rule.code}:
            continue
        ignored = [s for s in ignore if _matches(rule.code, s)]
        if ignored and _specificity(max(ignored, key=_specificity)) >= _specificity(best_select):
            continue
        enabled.add(rule.code)
    return frozenset(enabled)


def _specificity(selector: str) -> int:
    return 0 if selector == "ALL" else len(selector)
