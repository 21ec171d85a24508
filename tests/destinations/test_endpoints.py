"""STS and Lambda endpoints resolve exactly as botocore resolves them; settings.endpoint_url wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventrelay.destinations.aws_lambda.endpoints import resolve_endpoints
from tests.destinations.lambda_doubles import fresh_session
from tests.support.awsenv import isolate_aws_env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path, access_key="AKIAENDPOINTTEST0001", secret_key="endpoint-test-secret")


def test_default_is_the_regional_aws_endpoint() -> None:
    found = resolve_endpoints(fresh_session(), "us-west-2", None)
    assert found.lambda_ == "https://lambda.us-west-2.amazonaws.com"
    assert found.sts == "https://sts.us-west-2.amazonaws.com"


def test_service_specific_variables_win_over_the_global_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://global:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://lambda-only:2")
    found = resolve_endpoints(fresh_session(), "eu-west-1", None)
    assert found.lambda_ == "http://lambda-only:2"
    assert found.sts == "http://global:1"


def test_profile_endpoint_url_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nendpoint_url = http://from-profile:4566\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    found = resolve_endpoints(fresh_session(), "us-east-1", None)
    assert found.lambda_ == "http://from-profile:4566"
    assert found.sts == "http://from-profile:4566"


def test_settings_endpoint_url_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://lambda-only:2")
    found = resolve_endpoints(fresh_session(), "us-west-2", "http://override:9000")
    assert found.lambda_ == "http://override:9000"
    assert found.sts == "http://override:9000"
