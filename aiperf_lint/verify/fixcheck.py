"""Is after.py exactly what ``aiperf-lint check --fix`` makes of before.py?"""

from __future__ import annotations

import difflib

from aiperf_lint.verify.pairs import Pair


def check_fix(pair: Pair) -> tuple[str, str]:
    """Return (fix_match, note): fix_match is "yes", "no", "n.a." or "error".

    "n.a." covers pairs whose after.py is a hand rewrite (fix = "none") and an engine
    without ``aiperf_lint.api.fix_source`` yet; neither fails the pair.
    """
    if pair.fix == "none":
        return "n.a.", ""
    try:
        from aiperf_lint.api import fix_source
    except ImportError as exc:
        return "n.a.", f"fix not checked: aiperf_lint.api.fix_source unavailable ({exc})"
    except Exception as exc:  # a broken engine import is a finding, not a verifier crash
        return "error", f"importing aiperf_lint.api raised {type(exc).__name__}: {exc}"
    before = pair.before.read_text(encoding="utf-8")
    expected = pair.after.read_text(encoding="utf-8")
    try:
        fixed = fix_source(before, str(pair.before), unsafe=pair.fix == "unsafe")
    except Exception as exc:  # the engine's failure is this pair's finding, not a crash
        return "error", f"fix_source raised {type(exc).__name__}: {exc}"
    if fixed == expected:
        return "yes", ""
    return "no", "after.py differs from --fix output: " + first_difference(expected, fixed)


def first_difference(expected: str, actual: str) -> str:
    """``line 7: '    df["c"] = ...' vs '    for ...'``: the first differing line."""
    expected_lines, actual_lines = expected.splitlines(), actual.splitlines()
    matcher = difflib.SequenceMatcher(a=expected_lines, b=actual_lines, autojunk=False)
    for tag, i1, _, j1, _ in matcher.get_opcodes():
        if tag != "equal":
            want = expected_lines[i1] if i1 < len(expected_lines) else "<end of file>"
            got = actual_lines[j1] if j1 < len(actual_lines) else "<end of file>"
            return f"line {i1 + 1}: after.py has {want.strip()!r}, --fix gives {got.strip()!r}"
    return "line endings or trailing newline differ"
