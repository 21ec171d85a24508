"""Resolve function references to the ARNs IAM evaluates for ``lambda:InvokeFunction``.

A reference is a full ARN (used as is), a partial ARN ``ACCOUNT:function:NAME`` (region added) or a
bare name (account and region added), each optionally qualified (``:alias`` or ``:version``).

Which ARN does IAM check? Lambda authorizes ``Invoke`` against the ARN the call names: an unqualified
call against the function ARN, a call with a qualifier (``my-fn:live``, ``?Qualifier=live``) against
the qualified ARN ``...:function:my-fn:live`` (AWS Lambda Developer Guide, "Fine-tuning the Resources
and Conditions sections of policies": Invoke is restricted "by function, version, or alias ARN";
a permission on one ARN does not cover the others). So the least-privilege correct grant is exactly
the ARN eventrelay invokes: the qualified ARN for a qualified reference, the unqualified ARN for an
unqualified one. We do not add the unqualified ARN beside an alias (that would also allow invoking
``$LATEST``, which eventrelay never does for that destination) nor ``ARN:*`` (every version and alias).

Account and region: a bare name is resolved by Lambda in the account of the caller (the assumed role)
and the region of the endpoint (``settings.region``); so the defaults are exactly those: the role ARN's
account and ``settings.region``. ``--account-id`` / ``--region`` override them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eventrelay.core.errors import ConfigError
from eventrelay.destinations.aws_lambda.function_name import FunctionRef, parse_function_name

ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:(aws[a-zA-Z-]*):iam::(\d{12}):role/")


@dataclass(frozen=True, slots=True)
class Resolved:
    """One function reference resolved: the ARN to grant and where it came from."""

    ref: str
    arn: str
    """The ARN IAM checks for the invoke eventrelay makes (qualified when the reference is)."""
    unqualified_arn: str
    qualifier: str | None


def role_account(role_arn: str | None) -> str | None:
    """The 12-digit account of an IAM role ARN, or None."""
    m = _ROLE_ARN.match(role_arn or "")
    return m.group(2) if m else None


def role_partition(role_arn: str | None) -> str:
    m = _ROLE_ARN.match(role_arn or "")
    return m.group(1) if m else "aws"


def resolve(
    ref: str | FunctionRef,
    *,
    region: str | None,
    account: str | None,
    partition: str = "aws",
    field: str = "",
) -> Resolved:
    """Resolve ``ref``; raises ``ConfigError`` at ``field`` when the account or region is unknown."""
    parsed = ref if isinstance(ref, FunctionRef) else _parse(ref, field)
    if account is not None and not ACCOUNT_PATTERN.match(account):
        raise ConfigError("--account-id", f"{account!r} is not a 12-digit AWS account id")
    need_account = parsed.account or account
    need_region = parsed.region or region
    if not need_account:
        raise ConfigError(
            field,
            f"{parsed.raw!r} names no account: give --account-id, a role_address, or a partial/full ARN",
        )
    if not need_region:
        raise ConfigError(field, f"{parsed.raw!r} names no region: give --region or settings.region")
    unqualified = parsed.arn(need_region, need_account, partition)
    arn = f"{unqualified}:{parsed.qualifier}" if parsed.qualifier else unqualified
    return Resolved(ref=parsed.raw, arn=arn, unqualified_arn=unqualified, qualifier=parsed.qualifier)


def _parse(ref: str, field: str) -> FunctionRef:
    try:
        return parse_function_name(ref)
    except ValueError as exc:
        raise ConfigError(field, str(exc)) from exc
