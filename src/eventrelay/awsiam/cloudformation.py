"""A CloudFormation template creating the role eventrelay assumes and its invoke policy.

Parameters ``ExternalId``, ``LambdaARN`` and ``TrustedPrincipal`` (defaults from the configuration),
``RoleName`` and ``RolePath`` (from the configured ``role_address``, so the created role is the one
eventrelay is configured to assume); resources ``Role`` (AWS::IAM::Role whose trust policy requires the
External ID) and ``InvokePolicy`` (AWS::IAM::Policy allowing ``lambda:InvokeFunction`` on
``LambdaARN``, and the optional ``lambda:GetFunctionConcurrency`` on ``FunctionARN``: the
unqualified functions, when given); output ``RoleArn``. Several functions or External IDs make the parameter a
``CommaDelimitedList``, which CloudFormation expands into the policy's list.
"""

from __future__ import annotations

import re
from typing import Any

from eventrelay.awsiam.policy import POLICY_VERSION, statements
from eventrelay.awsiam.trust import ASSUME_ACTION, check_principal

TEMPLATE_VERSION = "2010-09-09"  # the only CloudFormation template format version
_ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role(/|/.*/)([\w+=,.@-]{1,64})$")
LAMBDA_ARN_PATTERN = r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9-_.]+(:[a-zA-Z0-9-_$.]+)?$"
PRINCIPAL_PARAM_PATTERN = r"^(\d{12}|arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:\S+)$"
EXTERNAL_ID_PATTERN = r"^[\w+=,.@:/-]{2,1224}$"  # AWS: ExternalId 2-1224 of [\w+=,.@:/-]


def template(
    *,
    functions: list[str],
    external_ids: list[str],
    principal: str | None,
    role_arn: str | None = None,
    description: str = "eventrelay: the role it assumes to invoke Lambda functions, and its invoke policy",
    read_concurrency: list[str] | None = None,
) -> dict[str, Any]:
    """The template as a JSON-compatible dict (intrinsics in long form: ``{"Ref": ...}``).

    ``principal`` None (the identity eventrelay runs as is unknown): ``TrustedPrincipal`` has no
    default, so CloudFormation asks for it, and its description says what to enter."""
    if not functions:
        raise ValueError("the template needs at least one function ARN")
    if not external_ids:
        raise ValueError("the template needs at least one External ID")
    if principal is not None:
        check_principal(principal)
    name, path = _role_name_path(role_arn)
    params: dict[str, Any] = {
        "ExternalId": _list_param(
            external_ids,
            "The External ID eventrelay sends (the workspace id)",
            "External IDs eventrelay sends (workspace or source ids), comma-separated",
            EXTERNAL_ID_PATTERN,
        ),
        "LambdaARN": _list_param(
            functions,
            "ARN of the Lambda function eventrelay invokes (qualified for an alias or version)",
            "ARNs of the Lambda functions eventrelay invokes, comma-separated",
            LAMBDA_ARN_PATTERN,
        ),
        "TrustedPrincipal": _principal_param(principal),
    }
    role_props: dict[str, Any] = {
        "Description": "Assumed by eventrelay to invoke Lambda functions",
        "AssumeRolePolicyDocument": {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": {"Ref": "TrustedPrincipal"}},
                    "Action": ASSUME_ACTION,
                    "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}},
                }
            ],
        },
    }
    if name:
        params["RoleName"] = {
            "Type": "String",
            "Default": name,
            "AllowedPattern": r"^[\w+=,.@-]{1,64}$",
            "Description": "Name of the role (as in the configured role_address)",
        }
        role_props["RoleName"] = {"Ref": "RoleName"}
    if path and path != "/":
        role_props["Path"] = path
    function_ref: Any = None
    if read_concurrency:
        params["FunctionARN"] = _list_param(
            read_concurrency,
            "Optional: the unqualified function ARN whose reserved concurrency eventrelay may read",
            "Optional: unqualified function ARNs whose reserved concurrency eventrelay may read, comma-separated",
            LAMBDA_ARN_PATTERN,
        )
        function_ref = _list_ref("FunctionARN", read_concurrency)
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": description,
        "Parameters": params,
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": role_props},
            "InvokePolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": "eventrelay-invoke",
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": {
                        "Version": POLICY_VERSION,
                        "Statement": statements(_list_ref("LambdaARN", functions), function_ref),
                    },
                },
            },
        },
        "Outputs": {
            "RoleArn": {
                "Description": "Put this in the destination's role_address",
                "Value": {"Fn::GetAtt": ["Role", "Arn"]},
            }
        },
    }


def _list_ref(param: str, values: list[str]) -> Any:
    """A reference to the list parameter ``param`` of ``values`` where a list is expected (a
    ``CommaDelimitedList`` is one already; a single value's ``String`` is put in one)."""
    return {"Ref": param} if len(values) > 1 else [{"Ref": param}]


def _principal_param(principal: str | None) -> dict[str, Any]:
    param: dict[str, Any] = {"Type": "String", "AllowedPattern": PRINCIPAL_PARAM_PATTERN}
    if principal is None:
        param["Description"] = (
            "Who may assume the role: the 12-digit account id, or the IAM user/role ARN, that eventrelay "
            "runs as (`aws sts get-caller-identity` on eventrelay's machine prints it)"
        )
    else:
        param["Default"] = principal
        param["Description"] = "The account id or IAM ARN eventrelay runs as (who may assume the role)"
    return param


def _list_param(values: list[str], one: str, many: str, pattern: str) -> dict[str, Any]:
    if len(values) == 1:
        return {"Type": "String", "Default": values[0], "AllowedPattern": pattern, "Description": one}
    return {"Type": "CommaDelimitedList", "Default": ",".join(values), "Description": many}


def _role_name_path(role_arn: str | None) -> tuple[str | None, str | None]:
    m = _ROLE_ARN.match(role_arn or "")
    return (m.group(2), m.group(1)) if m else (None, None)
