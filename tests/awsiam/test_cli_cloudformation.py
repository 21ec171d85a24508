"""``eventrelay aws ...`` as a user runs it; every generated template passes cfn-lint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_cli

from .conftest import ROLE, dest

CFN_LINT_TIMEOUT = 120  # seconds: cfn-lint loads its whole spec (~3 s idle), slower on a loaded machine
BASE: dict[str, Any] = {"workspace": {"id": "ws_123"}, "sources": [{"name": "web", "write_key": "k" * 20}]}

VARIANTS: dict[str, dict[str, Any]] = {
    "single": {**BASE, "destinations": [dest()]},
    "qualified": {**BASE, "destinations": [dest(lambda_="my-fn:live")]},
    "multiple": {
        **BASE,
        "destinations": [
            dest(lambda_="my-fn:3", functions={"identify": "users-fn", "page": "210987654321:function:pg"})
        ],
    },
    "sources-as-ids": {
        "sources": [{"name": "web", "write_key": "k" * 20}, {"name": "ios", "write_key": "j" * 20}],
        "destinations": [dest(role_address="arn:aws:iam::123456789012:role/team/a/eventrelay")],
    },
}


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return {"Ref": value} if suffix == "Ref" else {"Fn::GetAtt": str(value).split(".")}


_CfnLoader.add_multi_constructor("!", _tag)


@pytest.fixture
def generated(tmp_path: Path, write_config: Any, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, config in VARIANTS.items():
        path = write_config(config)
        for fmt in ("json", "yaml"):
            code, text, err = run_cli(
                capsys,
                "aws",
                "cloudformation",
                "--config",
                str(path),
                "--principal",
                "arn:aws:iam::111111111111:role/runner",
                "--format",
                fmt,
            )
            assert code == 0, err
            file = tmp_path / f"{name}.{fmt}"
            file.write_text(text, encoding="utf-8")
            out[f"{name}.{fmt}"] = (file, text)
    return out


def test_every_template_variant_passes_cfn_lint(generated: dict[str, Any]) -> None:
    cfn_lint = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    files = [str(file) for file, _ in generated.values()]
    result = subprocess.run(
        [cfn_lint, "--include-checks", "I", "--format", "parseable", "--", *files],
        capture_output=True,
        text=True,
        timeout=CFN_LINT_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(files) == 8


def test_json_and_yaml_say_the_same(generated: dict[str, Any]) -> None:
    for name in VARIANTS:
        as_json = json.loads(generated[f"{name}.json"][1])
        as_yaml = yaml.load(generated[f"{name}.yaml"][1], Loader=_CfnLoader)
        assert as_json == as_yaml


def test_template_parameters_resources_and_output(generated: dict[str, Any]) -> None:
    tpl = json.loads(generated["qualified.json"][1])
    params = tpl["Parameters"]
    assert params["ExternalId"]["Default"] == "ws_123"
    assert params["LambdaARN"]["Default"] == "arn:aws:lambda:us-west-2:123456789012:function:my-fn:live"
    assert params["TrustedPrincipal"]["Default"] == "arn:aws:iam::111111111111:role/runner"
    assert params["RoleName"]["Default"] == "eventrelay-invoke"
    role = tpl["Resources"]["Role"]
    assert role["Type"] == "AWS::IAM::Role"
    stmt = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert stmt["Principal"] == {"AWS": {"Ref": "TrustedPrincipal"}}
    assert stmt["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    pol = tpl["Resources"]["InvokePolicy"]
    assert pol["Type"] == "AWS::IAM::Policy"
    assert pol["Properties"]["Roles"] == [{"Ref": "Role"}]
    assert pol["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] == [{"Ref": "LambdaARN"}]
    assert tpl["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": ["Role", "Arn"]}


def test_several_functions_and_ids_become_lists(generated: dict[str, Any]) -> None:
    multi = json.loads(generated["multiple.json"][1])
    assert multi["Parameters"]["LambdaARN"]["Type"] == "CommaDelimitedList"
    assert multi["Parameters"]["LambdaARN"]["Default"].split(",") == [
        "arn:aws:lambda:us-west-2:123456789012:function:my-fn:3",
        "arn:aws:lambda:us-west-2:123456789012:function:users-fn",
        "arn:aws:lambda:us-west-2:210987654321:function:pg",
    ]
    assert multi["Resources"]["InvokePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] == {
        "Ref": "LambdaARN"
    }
    ids = json.loads(generated["sources-as-ids.json"][1])
    assert ids["Parameters"]["ExternalId"] == {
        "Type": "CommaDelimitedList",
        "Default": "web,ios",
        "Description": "External IDs eventrelay sends (workspace or source ids), comma-separated",
    }
    assert ids["Resources"]["Role"]["Properties"]["Path"] == "/team/a/"


def test_policy_and_trust_policy_commands(write_config: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(write_config(VARIANTS["multiple"]))
    code, out, _ = run_cli(capsys, "aws", "policy", "--config", path)
    assert code == 0
    assert json.loads(out)["Statement"][0]["Resource"][0] == "arn:aws:lambda:us-west-2:123456789012:function:my-fn:3"
    code, out, _ = run_cli(
        capsys,
        "aws",
        "trust-policy",
        "--config",
        path,
        "--principal",
        "111111111111",
        "--external-id",
        "ws_second",
        "--format",
        "yaml",
    )
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] == ["ws_123", "ws_second"]
    assert doc["Statement"][0]["Principal"] == {"AWS": "111111111111"}


def _no_credentials_env(tmp_path: Path) -> dict[str, str]:
    """A user's shell with no AWS credentials at all: no AWS_* variables, no config or credentials
    files, no instance metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def _eventrelay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventrelay.cli.main", *args],
        capture_output=True,
        text=True,
        env=_no_credentials_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_cloudformation_without_aws_credentials_asks_for_the_principal_and_passes_cfn_lint(
    write_config: Any, tmp_path: Path
) -> None:
    path = str(write_config(VARIANTS["single"]))
    result = _eventrelay(tmp_path, "aws", "cloudformation", "--config", path)
    assert result.returncode == 0, result.stderr
    template = json.loads(result.stdout)
    principal = template["Parameters"]["TrustedPrincipal"]
    assert "Default" not in principal  # CloudFormation asks for it when the stack is created
    assert "account id" in principal["Description"] and "get-caller-identity" in principal["Description"]
    assert "--principal" in result.stderr and "TrustedPrincipal" in result.stderr
    file = tmp_path / "template.json"
    file.write_text(result.stdout, encoding="utf-8")
    cfn_lint = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    lint = subprocess.run(
        [cfn_lint, "--include-checks", "I", "--format", "parseable", "--", str(file)],
        capture_output=True,
        text=True,
        timeout=CFN_LINT_TIMEOUT,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_trust_policy_without_aws_credentials_prints_a_marked_placeholder(write_config: Any, tmp_path: Path) -> None:
    path = str(write_config(VARIANTS["single"]))
    result = _eventrelay(tmp_path, "aws", "trust-policy", "--config", path)
    assert result.returncode == 0, result.stderr
    statement = json.loads(result.stdout)["Statement"][0]
    assert statement["Principal"] == {"AWS": "<ACCOUNT_ID_OR_ARN_EVENTRELAY_RUNS_AS>"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "ws_123"}}
    assert "<ACCOUNT_ID_OR_ARN_EVENTRELAY_RUNS_AS>" in result.stderr and "--principal" in result.stderr
    assert "Traceback" not in result.stderr


def test_roles_differ_without_destination_is_a_clear_error(
    write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {**BASE, "destinations": [dest(), dest(name="b", role_address=ROLE.replace("invoke", "other"))]}
    code, _, err = run_cli(capsys, "aws", "policy", "--config", str(write_config(config)))
    assert code == 2
    assert "pick one destination with --destination NAME" in err


def test_the_optional_concurrency_grant_is_in_the_documents_unless_left_out(
    write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_config(VARIANTS["multiple"]))
    code, out, _ = run_cli(capsys, "aws", "policy", "--config", path)
    assert code == 0
    actions = [s["Action"] for s in json.loads(out)["Statement"]]
    assert actions == ["lambda:InvokeFunction", "lambda:GetFunctionConcurrency"]
    code, out, _ = run_cli(capsys, "aws", "policy", "--config", path, "--no-optional-grants")
    assert [s["Action"] for s in json.loads(out)["Statement"]] == ["lambda:InvokeFunction"]
    code, out, _ = run_cli(capsys, "aws", "cloudformation", "--config", path, "--principal", "111111111111")
    template = json.loads(out)
    statements = template["Resources"]["InvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statements[1]["Action"] == "lambda:GetFunctionConcurrency"
    assert all(
        ":function:" in arn and arn.count(":") == 6
        for arn in template["Parameters"]["FunctionARN"]["Default"].split(",")
    )
