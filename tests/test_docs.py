"""Rule documentation and the generated README table."""

from __future__ import annotations

from pathlib import Path

from aiperf_lint import docs, registry

ROOT = Path(__file__).resolve().parent.parent


def test_readme_rules_table_is_current():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert docs.readme_with_table(readme) == readme, (
        "README rules table is stale: run `make readme`"
    )


def test_rules_reference_is_current():
    current = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert current == docs.rules_reference(), "docs/rules.md is stale: run `make readme`"


def test_rule_codes_and_names_are_well_formed():
    names = set()
    for rule in registry.all_rules():
        assert registry.CODE_PATTERN.match(rule.code), rule.code
        assert rule.name == rule.name.lower() and " " not in rule.name and "_" not in rule.name
        assert rule.name not in names
        names.add(rule.name)
        assert rule.fix_kind in {"none", "safe", "unsafe", "sometimes"}
        assert rule.triggers, f"{rule.code} has no prefilter triggers"


def test_rule_page_contains_docs():
    rule = registry.get_rule("AIP401")
    page = docs.rule_page(rule)
    assert page.startswith("# AIP401 pandas-iterrows-loop")
    assert "on by default; fix for some cases." in page
    assert "## Use instead" in page
