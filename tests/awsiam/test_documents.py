"""The permission policy, trust policy and their ARN resolution (DESIGN.md section 8)."""

from __future__ import annotations

import pytest

from eventrelay.awsiam import grants, policy, trust
from eventrelay.awsiam.arns import resolve
from eventrelay.core.errors import ConfigError

from .conftest import ROLE, dest, make_config


def _resources(config: object, **kw: object) -> list[str]:
    doc = policy.permission_policy(grants.resource_arns(grants.grants(config, **kw)))  # type: ignore[arg-type]
    (statement,) = doc["Statement"]
    assert doc["Version"] == "2012-10-17"
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "lambda:InvokeFunction"
    return list(statement["Resource"])


def test_bare_name_resolves_to_role_account_and_settings_region() -> None:
    assert _resources(make_config(dest())) == ["arn:aws:lambda:us-west-2:123456789012:function:my-fn"]


def test_alias_grants_exactly_the_alias_arn_lambda_checks() -> None:
    # Invoke with a qualifier is authorized against the qualified ARN; the unqualified ARN would
    # additionally allow $LATEST, which this destination never invokes (least privilege).
    assert _resources(make_config(dest(lambda_="my-fn:live"))) == [
        "arn:aws:lambda:us-west-2:123456789012:function:my-fn:live"
    ]


def test_version_and_full_arn_kept_as_written() -> None:
    full = "arn:aws:lambda:eu-west-1:210987654321:function:pages:3"
    config = make_config(dest(lambda_="my-fn:7", functions={"page": full}))
    assert _resources(config) == ["arn:aws:lambda:us-west-2:123456789012:function:my-fn:7", full]


def test_partial_arn_gets_the_configured_region() -> None:
    config = make_config(dest(lambda_="210987654321:function:other:prod"))
    assert _resources(config) == ["arn:aws:lambda:us-west-2:210987654321:function:other:prod"]


def test_per_call_type_functions_each_granted_once() -> None:
    config = make_config(dest(functions={"identify": "users-fn", "group": "users-fn", "track": "my-fn"}))
    assert _resources(config) == [
        "arn:aws:lambda:us-west-2:123456789012:function:my-fn",
        "arn:aws:lambda:us-west-2:123456789012:function:users-fn",
    ]


def test_lambda_not_granted_when_every_call_type_is_overridden() -> None:
    functions = {t: "all-fn" for t in ("track", "identify", "page", "screen", "group", "alias")}
    config = make_config(dest(lambda_="unused-fn", functions=functions))
    assert _resources(config) == ["arn:aws:lambda:us-west-2:123456789012:function:all-fn"]


def test_account_and_region_flags_override_defaults() -> None:
    config = make_config(dest())
    assert _resources(config, account_id="999999999999", region="eu-central-1") == [
        "arn:aws:lambda:eu-central-1:999999999999:function:my-fn"
    ]


def test_bad_account_flag_is_refused() -> None:
    with pytest.raises(ConfigError, match="12-digit"):
        grants.grants(make_config(dest()), account_id="12345")


def test_unresolvable_bare_name_says_what_is_missing() -> None:
    with pytest.raises(ConfigError) as err:
        resolve("my-fn", region="us-west-2", account=None, field="destinations[0].settings.lambda")
    assert err.value.path == "destinations[0].settings.lambda"
    assert "--account-id" in err.value.message
    with pytest.raises(ConfigError, match="no region"):
        resolve("123456789012:function:my-fn", region=None, account=None)


def test_destinations_with_different_roles_need_a_choice() -> None:
    other = dest(name="other", role_address="arn:aws:iam::123456789012:role/other")
    config = make_config(dest(), other)
    with pytest.raises(ConfigError, match="--destination"):
        grants.grants(config)
    assert _resources(config, destination="other") == ["arn:aws:lambda:us-west-2:123456789012:function:my-fn"]
    with pytest.raises(ConfigError, match="no aws_lambda destination named 'nope'"):
        grants.grants(config, destination="nope")


def test_trust_policy_requires_the_workspace_id() -> None:
    config = make_config(dest())
    doc = trust.trust_policy("arn:aws:iam::111111111111:role/runner", trust.external_ids(config))
    (statement,) = doc["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:role/runner"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "ws_123"}},
    }


def test_without_workspace_the_routed_sources_are_the_external_ids() -> None:
    config = make_config(dest(sources=["web", "ios"]), workspace=None, sources=("web", "ios", "server"))
    assert trust.external_ids(config) == ["web", "ios"]
    every = make_config(dest(), workspace=None, sources=("web", "ios"))
    doc = trust.trust_policy("111111111111", trust.external_ids(every, extra=["ws_other"]))
    assert doc["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] == ["web", "ios", "ws_other"]


def test_principal_from_caller_identity() -> None:
    session = "arn:aws:sts::111111111111:assumed-role/eventrelay-runner/i-0abc"
    assert trust.principal_from_identity(session) == "arn:aws:iam::111111111111:role/eventrelay-runner"
    user = "arn:aws:iam::111111111111:user/ops"
    assert trust.principal_from_identity(user) == user


def test_invalid_principal_is_refused() -> None:
    with pytest.raises(ConfigError, match="not an AWS account id"):
        trust.trust_policy("everyone", ["ws_123"])


def test_role_arn_is_the_destinations_role() -> None:
    assert grants.role_arn(make_config(dest())) == ROLE


def test_the_optional_grant_reads_the_reserved_concurrency_of_each_function_unqualified() -> None:
    config = make_config(dest(lambda_="my-fn:live", functions={"identify": "users-fn", "page": "my-fn:7"}))
    items = grants.grants(config)
    doc = policy.permission_policy(grants.resource_arns(items), grants.function_arns(items))
    invoke, read = doc["Statement"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert (read["Effect"], read["Action"]) == ("Allow", "lambda:GetFunctionConcurrency")
    assert read["Resource"] == [
        "arn:aws:lambda:us-west-2:123456789012:function:my-fn",
        "arn:aws:lambda:us-west-2:123456789012:function:users-fn",
    ]
    assert policy.permission_policy(grants.resource_arns(items))["Statement"] == [invoke]
