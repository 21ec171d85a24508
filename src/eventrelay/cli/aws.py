"""``eventrelay aws policy|trust-policy|cloudformation``: IAM documents from the configuration.

Printed on stdout (JSON or YAML) so they can be piped into ``aws iam`` or a file; notes go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from eventrelay.awsiam import cloudformation, grants, policy, trust
from eventrelay.awsiam.identity import caller_identity
from eventrelay.awsiam.render import render
from eventrelay.cli import discover
from eventrelay.cli.discover import CONFIG_HELP
from eventrelay.config.model import Config
from eventrelay.config.store import merge_api_entities

DOCUMENTS = ("policy", "trust-policy", "cloudformation")
PRINCIPAL_HINT = (
    f"replace {trust.PRINCIPAL_PLACEHOLDER} in the trust policy (the CloudFormation template asks for "
    "TrustedPrincipal) with the 12-digit account id or IAM user/role ARN eventrelay runs as "
    "(`aws sts get-caller-identity` prints it), or run again with --principal ACCOUNT_ID_OR_ARN"
)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("aws", help="IAM policy, trust policy, CloudFormation template")
    p.add_argument("document", choices=DOCUMENTS, help="which document to print")
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument("--destination", help="the destination (needed when destinations use different roles)")
    p.add_argument("--account-id", help="account for bare function names (default: the role ARN's account)")
    p.add_argument("--region", help="region for bare names and partial ARNs (default: settings.region)")
    p.add_argument(
        "--principal",
        help="who may assume the role (default: the identity eventrelay runs as, from STS GetCallerIdentity)",
    )
    p.add_argument(
        "--external-id",
        action="append",
        default=[],
        help="another External ID the role accepts (repeatable; e.g. a second workspace sharing the role)",
    )
    p.add_argument("--format", choices=("json", "yaml"), default="json", help="output format (default json)")
    p.add_argument(
        "--no-optional-grants",
        dest="optional_grants",
        action="store_false",
        help="leave out lambda:GetFunctionConcurrency (lets delivery start at a function's reserved concurrency)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = merge_api_entities(discover.load(args.config))
    document = build(args.document, config, args)
    sys.stdout.write(render(document, args.format))
    return 0


def build(kind: str, config: Config, args: argparse.Namespace) -> dict[str, Any]:
    if kind == "trust-policy":  # needs no destination: the role can be set up before one exists
        ids = trust.external_ids(config, args.destination, args.external_id)
        return trust.trust_policy(args.principal or _default_principal(config, args.destination), ids)
    items = grants.grants(config, args.destination, account_id=args.account_id, region=args.region)
    arns = grants.resource_arns(items)
    readable = grants.function_arns(items) if args.optional_grants else []
    if kind == "policy":
        return policy.permission_policy(arns, readable)
    ids = trust.external_ids(config, args.destination, args.external_id)
    principal = args.principal or _default_principal(config, args.destination)
    return cloudformation.template(
        functions=arns,
        external_ids=ids,
        principal=principal,
        role_arn=grants.role_arn(config, args.destination),
        read_concurrency=readable,
    )


def _default_principal(config: Config, destination: str | None) -> str | None:
    """The identity eventrelay runs as (STS GetCallerIdentity), or None with a note on stderr saying
    how to fill in the principal: the documents are generated without AWS credentials too."""
    region: str | None = None  # before a destination exists: botocore's own region (or the global endpoint)
    endpoint: str | None = None
    if destination or grants.role_users(config):
        needs = grants.select(config, destination)[0].needs
        region, endpoint = needs.region, needs.endpoint_url
    arn, reason = caller_identity(region, endpoint)
    if arn is None:
        print(
            f"note: cannot tell which identity eventrelay runs as ({reason}). The trusted principal is left "
            f"for you to fill in: {PRINCIPAL_HINT}",
            file=sys.stderr,
        )
        return None
    principal = trust.principal_from_identity(arn)
    print(
        f"trusted principal: {principal} (from STS GetCallerIdentity; override with --principal)",
        file=sys.stderr,
    )
    return principal
