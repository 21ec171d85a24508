"""Destination filters in the configuration file: parsed at config time, errors at their field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventrelay.cli.main import main
from eventrelay.config import parse_config
from eventrelay.config.load import validate_config
from eventrelay.core.errors import ConfigError
from eventrelay.filters.rules import Filtered, Kept

BASE = """
sources:
  - {name: web, write_key: kkkkkkkkkkkkkkkkkkkkkkkk}
destinations:
  - name: fn
    settings: {lambda: my-fn, region: us-west-2, role_address: "arn:aws:iam::123456789012:role/r"}
"""
FILTERS = """    only: 'type = "track" or type = "identify"'
    filters:
      - {if: 'event = "Debug"', drop: true}
      - {if: 'type = "identify"', sample: 0.5}
      - {drop_properties: [context.ip, traits.address.street]}
      - {if: 'event = "Signed Up"', allow_properties: [properties.plan]}
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, {})
    return str(info.value)


def test_filters_load_and_apply_in_order() -> None:
    dest = parse_config(BASE + FILTERS, {}).destinations[0]
    assert dest.only == 'type = "track" or type = "identify"'
    conditions = [f.condition for f in dest.filters]
    assert conditions == ['event = "Debug"', 'type = "identify"', "true", 'event = "Signed Up"']
    filters = dest.compiled_filters()
    assert filters.apply("m", {"type": "page"}) == Filtered('only: type = "track" or type = "identify"')
    assert filters.apply("m", {"type": "track", "event": "Debug"}) == Filtered('filters[0]: drop if event = "Debug"')
    kept = filters.apply("m", {"type": "track", "event": "Signed Up", "context": {"ip": "1.2.3.4"},
                               "properties": {"plan": "pro", "email": "a@b"}})  # fmt: skip
    assert kept == Kept({"type": "track", "event": "Signed Up", "context": {}, "properties": {"plan": "pro"}}, True)


def test_filters_are_written_back_as_given() -> None:
    dest = parse_config(BASE + FILTERS, {}).destinations[0]
    dumped = dest.model_dump(mode="json", by_alias=True)
    assert dumped["filters"][0] == {"if": 'event = "Debug"', "drop": True}
    assert dumped["filters"][2] == {"if": "true", "drop_properties": ["context.ip", "traits.address.street"]}
    again = parse_config(BASE, {}).model_dump(mode="python", by_alias=True)
    again["destinations"][0].update(only=dumped["only"], filters=dumped["filters"])

    assert validate_config(again).destinations[0].filters == dest.filters


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('{if: \'event = "Debug"\', drop: true}', "{if: 'event = ', drop: true}",
         "destinations[0].filters[0].if: at character 9: expected a field path or a value"),
        ('{if: \'type = "identify"\', sample: 0.5}', "{if: 'type = \"identify\"', sample: 1.5}",
         "destinations[0].filters[1].sample"),
        ('{if: \'type = "identify"\', sample: 0.5}', "{if: 'type == \"identify\"', sample: 0.5}",
         "destinations[0].filters[1].if: at character 6: expected = (FQL compares with a single =)"),
        ("[context.ip, traits.address.street]", "[ip]", "destinations[0].filters[2].drop_properties[0]: 'ip'"),
        ("{drop_properties: [context.ip, traits.address.street]}", "{if: 'true'}",
         "destinations[0].filters[2]: a filter takes exactly one of drop, sample"),
        ("{drop_properties: [context.ip, traits.address.street]}", "{drop: true, sample: 0.5}",
         "given: drop, sample"),
        ("{drop_properties: [context.ip, traits.address.street]}", "{drop: true, when: x}",
         "destinations[0].filters[2].when: unknown key"),
        ("only: 'type = \"track\" or type = \"identify\"'", "only: 'type = \"track\" or'",
         "destinations[0].only: at character 18: expected a condition"),
    ],
)  # fmt: skip
def test_a_bad_filter_names_its_field_path_the_position_and_what_was_expected(
    replace: str, by: str, message: str
) -> None:
    assert replace in FILTERS
    assert message in _error(BASE + FILTERS.replace(replace, by))


def test_validate_command_reports_a_filter_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + FILTERS.replace("'event = \"Debug\"'", "'event = \"Debug\" and (userId = 1'"))
    assert main(["validate", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "destinations[0].filters[0].if: at character 32: expected ')' to close the '(' at character 21" in err
