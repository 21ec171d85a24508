"""Config-time validation of the aws_lambda settings that the destination relies on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eventrelay.config.model import Config
from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings

BASE = {"lambda": "my-fn", "region": "us-west-2", "role_address": "arn:aws:iam::123456789012:role/r"}


def test_external_id_is_refused_with_the_confused_deputy_explanation_at_its_path() -> None:
    with pytest.raises(ValidationError) as info:
        Config.model_validate({"destinations": [{"name": "d", "settings": {**BASE, "external_id": "mine"}}]})
    [error] = info.value.errors()
    assert error["loc"] == ("destinations", 0, "settings", "external_id")
    assert "confused-deputy" in error["msg"]


def test_external_id_left_empty_is_accepted() -> None:
    assert AwsLambdaSettings.model_validate({**BASE, "external_id": None}).external_id is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lambda", "a" * 65),
        ("lambda", "my fn"),
        ("region", "mars-1"),
        ("role_address", "arn:aws:iam::123:role/r"),
        ("client_context", {"custom": {"k": "x" * 3000}}),
    ],
)
def test_invalid_values_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        AwsLambdaSettings.model_validate({**BASE, field: value})
    assert info.value.errors()[0]["loc"][0] == field
