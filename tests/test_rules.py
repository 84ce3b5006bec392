"""One parametrized test runs every rule's VALID / INVALID examples."""

from __future__ import annotations

import textwrap

import pytest

from aiperf_lint import api, registry
from aiperf_lint.rule import Rule


def _cases(kind: str):
    for rule in registry.all_rules():
        valid, invalid = rule.examples()
        examples = valid if kind == "valid" else invalid
        for index, example in enumerate(examples):
            yield pytest.param(rule, example, id=f"{rule.code}-{kind}-{index}")


def _findings(rule: type[Rule], source: str):
    return [f for f in api.check_source(source, select=[rule.code]) if f.code == rule.code]


def test_every_rule_has_examples_and_docs():
    for rule in registry.all_rules():
        valid, invalid = rule.examples()
        assert valid, f"{rule.code} has no VALID examples"
        assert invalid, f"{rule.code} has no INVALID examples"
        docs = rule.docs()
        for section in (
            "## What it does",
            "## Why is this bad",
            "## Example",
            "## Use instead",
            "## Fix safety",
            "## References",
        ):
            assert section in docs, f"{rule.code} docs lack {section!r}"
        if rule.fix_kind != "none":
            assert any(i.fixed is not None for i in invalid), (
                f"{rule.code} is fixable but has no fixed example"
            )


@pytest.mark.parametrize(("rule", "source"), list(_cases("valid")))
def test_valid_examples_are_not_reported(rule, source):
    source = textwrap.dedent(source)
    assert _findings(rule, source) == []


@pytest.mark.parametrize(("rule", "example"), list(_cases("invalid")))
def test_invalid_examples_are_reported_and_fixed(rule, example):
    source = textwrap.dedent(example.code)
    findings = _findings(rule, source)
    assert len(findings) == example.count, [f.message for f in findings]
    for finding in findings:
        assert finding.message and finding.line >= 1
    if example.fixed is None:
        return
    expected = textwrap.dedent(example.fixed)
    fixed = api.fix_source(source, select=[rule.code], unsafe=example.unsafe)
    assert fixed == expected
    # the fix removes the finding and is idempotent
    assert _findings(rule, fixed) == []
    assert api.fix_source(fixed, select=[rule.code], unsafe=example.unsafe) == fixed
    if example.unsafe:
        # an unsafe fix is never applied without --unsafe-fixes
        assert api.fix_source(source, select=[rule.code], unsafe=False) == source
