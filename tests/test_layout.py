"""Per-statement positions and fix edits agree with LibCST's whole-module ones."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from aiperf_lint import engine, registry
from aiperf_lint.fixer import diff_edits, render_fix
from aiperf_lint.layout import Layout

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_SOURCES = sorted((ROOT / "fixtures").glob("*/before.py"))

SHAPES = {
    "header comment, decorators, semicolons": (
        "#!/usr/bin/env python\n# licence\n\nimport torch; import numpy as np\n\n\n"
        "@decorator\n# between\n@other(1)\ndef f(x):\n    return x  # trailing\n    # block footer\n"
        "# module comment\nclass A:\n    pass\n\n# final comment\n"
    ),
    "no final newline": "import torch\nx = torch.zeros(3)\nif x:\n    y = 1",
    "CRLF": "import torch\r\n\r\nfor i in range(3):\r\n    x = torch.ones(2).cuda()\r\n",
    "tabs and multi-line strings": 'def f():\n\ts = """a\n\nb"""\n\treturn s\n',
    "empty": "",
    "only comments": "# just a comment\n",
}


def _sources() -> list[tuple[str, str]]:
    sources = [(name, text) for name, text in SHAPES.items()]
    sources += [(path.parent.name, path.read_text()) for path in FIXTURE_SOURCES]
    return sources


@pytest.mark.parametrize("name,text", _sources(), ids=[n for n, _ in _sources()])
def test_every_node_position_matches_libcst(name: str, text: str) -> None:
    module = cst.parse_module(text)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    layout = Layout(module, text)
    assert layout.faithful
    checked = 0
    for index, stmt in enumerate(module.body):
        positions = layout.statement_positions(index)
        for node, position in positions.items():
            assert expected[node] == position, (name, type(node).__name__)
            checked += 1
        assert layout.position(stmt) == expected[stmt]
    outside = _outside_body(module)
    assert checked == sum(1 for node in expected if id(node) not in outside)


def _outside_body(module: cst.Module) -> set[int]:
    outside = {id(module)}
    pending: list[cst.CSTNode] = [*module.header, *module.footer]
    while pending:
        current = pending.pop()
        outside.add(id(current))
        pending.extend(current.children)
    return outside


def test_unfaithful_render_is_detected() -> None:
    text = "x = 1\r"  # LibCST renders a final lone CR as "\n"
    module = cst.parse_module(text)
    assert not Layout(module, text).faithful


@pytest.mark.parametrize("pair", FIXTURE_SOURCES, ids=lambda p: p.parent.name)
def test_fix_edits_equal_whole_module_render(pair: Path) -> None:
    text = pair.read_text()
    rules = registry.all_rules()
    analysis = engine.analyse(text, engine.active_rules(text.encode(), rules), str(pair))
    layout = Layout(analysis.module, text)
    fixes = [report for _, report in analysis.reports if report.fix is not None]
    for report in fixes:
        local = layout.fix_edits(report.fix, report.top, report.statement)
        whole = diff_edits(text, render_fix(analysis.module, report.fix))
        assert local is not None
        assert _apply(text, local) == _apply(text, whole)


def _apply(text: str, edits) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text


def test_fix_at_end_of_file_without_newline_falls_back() -> None:
    text = "import torch\nfor i in range(3):\n    x = torch.zeros(3).cuda()"
    rules = registry.all_rules()
    analysis = engine.analyse(text, engine.active_rules(text.encode(), rules), "<t>")
    findings = engine.to_findings(analysis, "<t>", with_fixes=True)
    fixed = [f for f in findings if f.edits]
    assert fixed, "AIP101 reports the factory-then-move"
    for finding in fixed:
        new = _apply(text, finding.edits)
        assert not new.endswith("\n")
        cst.parse_module(new)


def test_import_next_to_a_replaced_expression_is_one_consistent_edit() -> None:
    # AIP107's fix adds an import; the replaced expression starts where the import goes.
    text = "import torch\nfor x in xs:\n    out = torch.cat([out, x])\n"
    rules = registry.all_rules()
    analysis = engine.analyse(text, engine.active_rules(text.encode(), rules), "<t>")
    layout = Layout(analysis.module, text)
    for _, report in analysis.reports:
        if report.fix is None:
            continue
        local = layout.fix_edits(report.fix, report.top, report.statement)
        assert local is not None
        assert _apply(text, local) == render_fix(analysis.module, report.fix)


def _rule_examples() -> list[tuple[str, str]]:
    cases = []
    for rule in registry.all_rules():
        _valid, invalid = rule.examples()
        cases += [(f"{rule.code}-{i}", example.code) for i, example in enumerate(invalid)]
    return cases


@pytest.mark.parametrize("name,text", _rule_examples(), ids=[n for n, _ in _rule_examples()])
def test_every_example_fix_equals_whole_module_render(name: str, text: str) -> None:
    rules = registry.all_rules()
    analysis = engine.analyse(text, engine.active_rules(text.encode(), rules), name)
    layout = Layout(analysis.module, text)
    assert layout.faithful
    for _, report in analysis.reports:
        if report.fix is None:
            continue
        local = layout.fix_edits(report.fix, report.top, report.statement)
        assert local is not None
        assert _apply(text, local) == render_fix(analysis.module, report.fix), name


def test_module_and_header_nodes_still_have_positions() -> None:
    text = "# header comment\nimport torch\n"
    module = cst.parse_module(text)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    layout = Layout(module, text)
    assert layout.position(module) == expected[module]
    assert layout.position(module.header[0]) == expected[module.header[0]]
