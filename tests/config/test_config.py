"""The configuration file: YAML, ${ENV} substitution, unknown keys refused, errors by field path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrelay.cli.main import main
from eventrelay.config import load_config, parse_config
from eventrelay.core.errors import ConfigError

GOOD = """
workspace: {id: ws_123}
storage: {backend: sqlite, path: ./data}
admin: {token: "${ADMIN_TOKEN}"}
sources:
  - {name: web, write_key: "${WEB_WRITE_KEY}"}
destinations:
  - name: lambda-prod
    type: aws_lambda
    sources: [web]
    settings: {lambda: "my-fn:live", region: us-west-2,
               role_address: "arn:aws:iam::123456789012:role/eventrelay-invoke",
               log_type: Tail, client_context: {app: shop}, functions: {identify: users-fn}}
    delivery: {timeout: 5s, retry_window: 4h}
"""
ENV = {"ADMIN_TOKEN": "a" * 32, "WEB_WRITE_KEY": "k" * 24}


def _error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env if env is not None else ENV)
    return str(info.value)


def test_design_example_loads_with_env_substitution() -> None:
    config = parse_config(GOOD, ENV)
    dest = config.destinations[0]
    assert config.sources[0].write_key.get_secret_value() == "k" * 24
    assert dest.delivery.timeout == 5.0 and dest.delivery.retry_window == 4 * 3600
    assert dest.settings.function_for("identify").name == "users-fn"
    assert dest.settings.function_for("track").qualifier == "live"


def test_missing_env_variable_names_field_and_variable() -> None:
    msg = _error(GOOD, {"ADMIN_TOKEN": "a" * 32})
    assert "sources[0].write_key" in msg and "WEB_WRITE_KEY" in msg


def test_unknown_key_is_refused_with_its_path() -> None:
    msg = _error(GOOD.replace("log_type: Tail", "log_type: Tail, colour: red"))
    assert "destinations[0].settings.colour: unknown key" in msg


@pytest.mark.parametrize(
    ("replace", "by", "path"),
    [
        ('lambda: "my-fn:live"', 'lambda: "my fn"', "destinations[0].settings.lambda"),
        ('lambda: "my-fn:live"', 'lambda: "' + "f" * 65 + '"', "destinations[0].settings.lambda"),
        ("region: us-west-2", "region: westus", "destinations[0].settings.region"),
        (
            'role_address: "arn:aws:iam::123456789012:role/eventrelay-invoke"',
            "role_address: arn:aws:iam::1:role/x",
            "destinations[0].settings.role_address",
        ),
        (
            "client_context: {app: shop}",
            "client_context: {app: " + "x" * 3000 + "}",
            "destinations[0].settings.client_context",
        ),
        ("timeout: 5s", "timeout: soon", "destinations[0].delivery.timeout"),
        ("sources: [web]", "sources: [mobile]", "destinations[0].sources[0]"),
    ],
)
def test_invalid_values_name_the_field(replace: str, by: str, path: str) -> None:
    assert replace in GOOD
    assert path in _error(GOOD.replace(replace, by))


def test_short_write_key_refused() -> None:
    msg = _error(GOOD, {"ADMIN_TOKEN": "a" * 32, "WEB_WRITE_KEY": "short"})
    assert "sources[0].write_key" in msg and "16" in msg
    assert "short" not in msg  # the secret itself is never echoed


def test_external_id_is_read_only() -> None:
    msg = _error(GOOD.replace("log_type: Tail", "log_type: Tail, external_id: other"))
    assert "external_id" in msg and "confused-deputy" in msg


def test_validate_command(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    good = tmp_path / "good.yaml"  # type: ignore[operator]
    good.write_text(GOOD)
    assert main(["validate", "--config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"  # type: ignore[operator]
    bad.write_text(GOOD.replace("region: us-west-2", "region: nowhere"))
    assert main(["validate", "--config", str(bad)]) == 2
    assert "destinations[0].settings.region" in capsys.readouterr().err


def test_load_config_missing_file(tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")  # type: ignore[operator]


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
yaml_values = st.recursive(
    yaml_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=10
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["workspace", "storage", "admin", "sources", "destinations", "ingest", "x"]),
        yaml_values,
        max_size=4,
    )
)
def test_any_mapping_either_loads_or_raises_config_error(data: dict[str, object]) -> None:
    import yaml

    try:
        parse_config(yaml.safe_dump(data), {})
    except ConfigError as exc:
        assert str(exc)
