import importlib
import pkgutil

import rules
from parsers.model import ParseResult
from parsers.problems import CATALOGUE
from rules.campaign import newest_campaign
from tests.rules.conftest import form


def test_every_rule_module_is_registered_and_well_formed():
    skip = {"base", "campaign", "campaigns"}
    modules = {m.name for m in pkgutil.iter_modules(rules.__path__)} - skip
    assert {r.__name__.split(".")[-1] for r in rules.RULES} == modules
    for name in modules:
        rule = importlib.import_module(f"rules.{name}")
        assert rule.CODE.replace("-", "_") == name
        assert CATALOGUE[rule.CODE].severity == rule.SEVERITY
        assert callable(rule.check)


def test_judge_adds_problems_without_touching_the_input():
    result = ParseResult("a.xlsx", "xlsx", forms=[form(unit=None, year=2020)])
    judged = rules.judge(result, newest_campaign())
    assert result.forms[0].problems == []
    assert sorted(p.code for p in judged.forms[0].problems) == ["missing-unit-name", "wrong-year"]
