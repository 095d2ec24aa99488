"""Built-in suites and suite files written by people."""

from __future__ import annotations

import pytest

from kitt.domain.errors import SuiteError
from kitt.services.suites import SuiteCatalog, parse_suite


def test_builtin_suites_load_and_match_their_promises():
    catalog = SuiteCatalog()
    assert catalog.names() == ["performance", "quick", "standard"]
    quick = catalog.load("quick")
    assert quick.repetitions == 1
    assert sum(s.load.requests or 0 for s in quick.scenarios) <= 60
    assert max(s.load.max_in_flight or 0 for s in quick.scenarios) <= 4
    perf = catalog.load("performance")
    assert perf.repetitions == 3
    closed = {s.load.max_in_flight for s in perf.scenarios if s.load.pattern == "closed"}
    assert {1, 4, 16, 64} <= closed
    assert any(s.load.pattern == "poisson" for s in perf.scenarios)
    assert max(s.workload.input_tokens for s in perf.scenarios) >= 4096
    assert catalog.load("standard").repetitions == 3


def test_a_suite_file_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[[scenarios]]\nname = "a"\nload = { concurrency = 2, requests = 4 }\n'
    )
    suite = SuiteCatalog().load(str(path))
    assert suite.name == "mine"
    assert suite.scenarios[0].workload.output_tokens == 128  # the default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x"\n[[scenarios]]\nname = "a"\nload = { concurency = 3, requests = 3 }\n',
         "suite file bad.toml: unknown key `concurency` (at `scenarios[0].load`)"),
        ('name = "x"\nrepetitons = 3\n[[scenarios]]\nname = "a"\nload = { requests = 3 }\n',
         "suite file bad.toml: unknown key `repetitons`"),
        ('name = "x"\n[[scenarios]\n',
         "suite file bad.toml: not valid TOML: Expected ']]' at the end of an array declaration "
         "(at line 2, column 12)"),
        ('name = "x"\n[[scenarios]]\nname = "a"\nload = { requests = 0 }\n',
         "suite file bad.toml: requests must be >= 1 (at `scenarios[0].load`)"),
        ('name = "x"\nrepetitions = "three"\nscenarios = []\n',
         "suite file bad.toml: Expected `int`, got `str` (at `repetitions`)"),
        ('name = "x"\n', "suite file bad.toml: missing key `scenarios`"),
        ('name = "x"\n[[scenarios]]\nname = "a"\nload = { requests = 1 }\n'
         '[[scenarios]]\nname = "a"\nload = { requests = 1 }\n',
         "suite file bad.toml: scenario name 'a' is used twice"),
    ],
)
def test_malformed_suites_give_one_line_naming_file_and_key(text, expected):
    with pytest.raises(SuiteError) as info:
        parse_suite(text.encode(), "bad.toml")
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


def test_unknown_suite_name_lists_the_builtin_ones(tmp_path):
    with pytest.raises(SuiteError, match=r"no suite named .quik.*performance, quick, standard"):
        SuiteCatalog().load("quik")
    with pytest.raises(SuiteError, match="cannot read suite file"):
        SuiteCatalog().load(str(tmp_path / "missing.toml"))
