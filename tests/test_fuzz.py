"""Property tests: linting never raises; fixes parse, clear their finding, are
idempotent and leave every byte outside their edits unchanged.

CI runs a small budget; `make fuzz` sets AIPERF_FUZZ_EXAMPLES for a larger one.
"""

from __future__ import annotations

import ast
import os
import tempfile
import textwrap
from pathlib import Path

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiperf_lint import api, config, engine, fixer, registry, runner

# Generated code such as `1()` compiles with a SyntaxWarning: expected noise here.
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")
EXAMPLES = int(os.environ.get("AIPERF_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    # CI's small budget is reproducible (same examples every run); `make fuzz`
    # explores new ones each time.
    derandomize="AIPERF_FUZZ_EXAMPLES" not in os.environ,
    database=None if "AIPERF_FUZZ_EXAMPLES" not in os.environ else settings.default.database,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
ROOT = Path(__file__).resolve().parent.parent
ALL_RULES = [rule for rule in registry.all_rules()]


def _seed_sources() -> list[str]:
    """Every INVALID example and every fixture before.py: code the rules match."""
    sources = [textwrap.dedent(i.code) for rule in ALL_RULES for i in rule.examples()[1]]
    sources += [p.read_text() for p in sorted((ROOT / "fixtures").glob("*/before.py"))]
    return sources


SEEDS = _seed_sources()


def _lint_all(source: str):
    """Lint with every rule; a syntax error is fine, an internal error is a bug."""
    try:
        findings, errors = engine.lint_text(source, ALL_RULES, "<fuzz>")
    except engine.LintError as exc:
        assert exc.error.kind == "syntax", exc.error.message
        return None
    internal = [e for e in errors if e.kind == "internal"]
    assert not internal, internal[0].message + "\n" + (internal[0].traceback or "")
    return findings


@FUZZ
@given(hypothesmith.from_grammar())
def test_fuzz_lint_never_raises_on_generated_python(source):
    _lint_all(source)


# -------------------------------------------------------------- mutations

_NAMES = st.sampled_from(["df", "x", "model", "loader", "t", "arr", "data", "row", "self.m"])


@st.composite
def mutated_seed(draw) -> str:
    source = draw(st.sampled_from(SEEDS))
    lines = source.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(
                ["comment", "blank", "rename", "crlf", "cr", "tabs", "dup", "drop", "wrap"]
            )
        )
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        indent = line[: len(line) - len(line.lstrip())]
        if kind == "comment":
            lines.insert(index, indent + "# a comment\n")
        elif kind == "blank":
            lines.insert(index, "\n")
        elif kind == "rename":
            old, new = draw(_NAMES), draw(_NAMES)
            lines = [ln.replace(old, new) for ln in lines]
        elif kind == "crlf":
            lines = [ln.replace("\r\n", "\n").replace("\n", "\r\n") for ln in lines]
        elif kind == "cr":  # classic Mac endings: LibCST cannot round-trip a final lone CR
            lines = [ln.replace("\r\n", "\n").replace("\n", "\r") for ln in lines]
        elif kind == "tabs":
            lines = [_tab_indent(ln) for ln in lines]
        elif kind == "dup":
            lines.insert(index, line)
        elif kind == "drop":
            del lines[index]
        elif kind == "wrap" and line.strip() and not line.rstrip().endswith(":"):
            lines[index] = indent + "if flag:\n" + indent + "    " + line.lstrip()
    return "".join(lines)


def _tab_indent(line: str) -> str:
    stripped = line.lstrip(" ")
    return "\t" * ((len(line) - len(stripped)) // 4) + stripped


@FUZZ
@given(mutated_seed())
def test_fuzz_mutated_rule_examples(source):
    findings = _lint_all(source)
    if findings is None:
        return
    for finding in fixer.fixable(findings, unsafe=True):
        _check_single_fix(source, finding)
    _check_full_fix(source, unsafe=True)


def _check_single_fix(source: str, finding) -> None:
    fixed = fixer.apply_edits(source, finding.edits)
    ast.parse(fixed)
    start = min(e.start for e in finding.edits)
    end = max(e.end for e in finding.edits)
    tail = len(source) - end
    assert fixed[:start] == source[:start]
    assert fixed[len(fixed) - tail :] == source[end:]
    _assert_fix_makes_progress(source, fixed, finding.code)


def _assert_fix_makes_progress(source: str, fixed: str, code: str) -> None:
    """The fix cleared its finding. A hoisting fix may move a statement out of
    one loop of a nest per fix (AIP102 on `for epoch: for batch: x = x.cuda()`),
    where it is reported again for the outer loop: then fixing that code again
    must clear it within the fixer's passes."""
    before = sum(f.code == code for f in _lint_all(source) or [])
    current = fixed
    for _ in range(fixer.MAX_PASSES):
        findings = [f for f in _lint_all(current) or [] if f.code == code]
        if len(findings) < before:
            return
        again = fixer.fixable(findings, unsafe=True)
        if not again:
            break
        current = fixer.apply_edits(current, again[0].edits)
    raise AssertionError(f"{code} fix did not clear its finding")


def _check_full_fix(source: str, unsafe: bool) -> None:
    fixed = api.fix_source(source, unsafe=unsafe, select=["ALL"])
    if fixed == source:
        return
    ast.parse(fixed)
    assert api.fix_source(fixed, unsafe=unsafe, select=["ALL"]) == fixed, "fix is not idempotent"


def test_every_seed_lints_cleanly():
    for source in SEEDS:
        _lint_all(source)


# -------------------------------------------------------------- through files

ALL_CODES = registry.resolve(["ALL"])
BOM = b"\xef\xbb\xbf"


def _lint_file(data: bytes, fix: bool) -> tuple[runner.FileResult, bytes]:
    """lint_path on a real temporary file (with --fix --unsafe-fixes when fix)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "module.py"
        path.write_bytes(data)
        options = runner.LintOptions(
            codes=ALL_CODES,
            settings=config.Settings(root=Path(directory)),
            fix=fix,
            unsafe_fixes=True,
        )
        result = runner.lint_path(path, options)
        return result, path.read_bytes()


@FUZZ
@given(mutated_seed(), st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
def test_fuzz_fix_keeps_encoding_and_bom(source, encoding):
    if encoding == "latin-1":
        source = "# -*- coding: latin-1 -*-\n" + source + "\nname = 'caf\u00e9'\n"
    data = source.encode(encoding)
    result, written = _lint_file(data, fix=True)
    assert not [e for e in result.errors if e.kind == "internal"], result.errors
    if result.fixed_text is None:
        assert written == data
        return
    assert written.startswith(BOM) == data.startswith(BOM)
    assert written.decode(encoding) == api.fix_source(source, unsafe=True, select=["ALL"])


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 10**6), st.binary(max_size=6))
def test_fuzz_damaged_bytes_give_one_line_errors(source, cut, junk):
    """Truncated files and stray bytes (undecodable, NUL, unclosed strings...)
    are reported per file, one line each, never as an internal error."""
    data = source.encode()
    at = cut % (len(data) + 1)
    result, _ = _lint_file(data[:at] + junk + data[at : at + cut % 3 * 40], fix=False)
    for error in result.errors:
        assert error.kind != "internal", error.message + "\n" + (error.traceback or "")
        assert "\n" not in error.one_line()
