"""Very large files are analysed piece by piece with the same findings and fixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiperf_lint import engine, fixer, pieces, registry

ROOT = Path(__file__).resolve().parent.parent
# Self-contained fixture modules: their findings depend on nothing outside their defs.
MODULES = [
    "AIP101_factory_then_to_device",
    "AIP303_list_membership_loop",
    "AIP401_iterrows_loc_write",
    "AIP107_cat_in_loop",
]


def _big_source() -> str:
    # Two statements on one line first: the split merges them, and must still
    # judge every later statement by its own code.
    parts = ['"""A generated module."""\n\nimport torch; import pandas as pd\n\n']
    table = ",\n".join(f'    "key{i}": ({i}, "value {i}")' for i in range(2_500))
    parts.append(f"TABLE = {{\n{table},\n}}\n\n")  # pure data: never parsed
    ops = "\n".join(
        f"    torch.ones({i}).to(DEVICE),  # element {i}"
        if i % 500 == 7
        else f"    op({i}, scale={i}.0),"
        for i in range(6_000)
    )
    parts.append(f"OPS = [\n{ops}\n]\n\n")  # a list of calls: cut between elements
    for round_ in range(12):
        for name in MODULES:
            text = (ROOT / "fixtures" / name / "before.py").read_text()
            parts.append(text.replace("def run(", f"def run_{round_}(") + "\n\n")
    return "".join(parts)


@pytest.fixture(scope="module")
def big() -> str:
    text = _big_source()
    assert len(text) > pieces.BIG_FILE_CHARS
    return text


def _rules(text: str):
    return engine.active_rules(text.encode(), registry.all_rules())


def _whole(text: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pieces, "BIG_FILE_CHARS", 10**9)
    return engine.lint_text(text, _rules(text), "<big>")


def _key(finding) -> tuple:
    edits = tuple((e.start, e.end, e.content, e.location, e.end_location) for e in finding.edits)
    return (
        finding.code,
        finding.line,
        finding.column,
        finding.end_line,
        finding.end_column,
        finding.statement_line,
        finding.message,
        edits,
    )


def test_the_split_skips_data_and_cuts_between_elements(big: str) -> None:
    split = pieces.split(big)
    assert split is not None
    assert "import torch" in split.prelude and "import pandas as pd" in split.prelude
    assert all("TABLE = {" not in p.text and '"key1000"' not in p.text for p in split.pieces)
    wrapped = [p for p in split.pieces if p.wrapped]
    assert len(wrapped) > 1
    assert all(len(p.text) <= 2 * pieces.PIECE_CHARS for p in split.pieces)
    for piece in split.pieces:  # every piece is the file's own text at its offset
        inner = piece.text[2:-2] if piece.wrapped else piece.text
        start = piece.offset + (2 if piece.wrapped else 0)
        assert big[start : start + len(inner)] == inner


def test_piecewise_findings_equal_whole_file(big: str, monkeypatch: pytest.MonkeyPatch) -> None:
    piecewise, errors = engine.lint_text(big, _rules(big), "<big>")
    whole, whole_errors = _whole(big, monkeypatch)
    assert errors == whole_errors == []
    assert [_key(f) for f in piecewise] == [_key(f) for f in whole]
    codes = {f.code for f in piecewise}
    assert {"AIP101", "AIP303", "AIP401", "AIP107"} <= codes
    in_ops = [
        f for f in piecewise if big.splitlines()[f.line - 1].lstrip().startswith("torch.ones")
    ]
    assert len(in_ops) == 12  # the findings inside the cut list, at their own lines


def test_piecewise_fix_equals_whole_file_fix(big: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = fixer.fix_text(big, _rules(big), "<big>", unsafe=True)
    monkeypatch.setattr(pieces, "BIG_FILE_CHARS", 10**9)
    whole = fixer.fix_text(big, _rules(big), "<big>", unsafe=True)
    assert fixed.applied == whole.applied > 0
    assert fixed.text == whole.text


def test_a_big_file_with_a_syntax_error_is_reported_by_the_whole_file_path(big: str) -> None:
    broken = big + "\ndef broken(:\n    pass\n"
    with pytest.raises(engine.LintError) as raised:
        engine.lint_text(broken, _rules(broken), "<big>")
    assert raised.value.error.kind == "syntax"
    assert raised.value.error.line == broken.count("\n", 0, broken.index("def broken")) + 1


def test_a_fix_reaching_the_wrapper_brackets_is_dropped() -> None:
    piece = pieces.Piece("[\n    f(1),\n]\n", line_shift=4, offset=100, wrapped=True)
    finding = engine.Finding("AIP000", "x", "m", "<p>", 2, 5, 2, 9, "safe", [])
    finding.edits = [engine.TextEdit(0, 1, "(")]
    shifted = piece.finding(finding, " " * 200)
    assert shifted.line == 6 and shifted.edits == [] and shifted.fix_applicability is None
    assert "fix unavailable" in shifted.message
