"""AWS Lambda FunctionName parsing: name, name:alias, name:version, full or partial ARN.

Validated with AWS's own FunctionName pattern as a full match (botocore does not validate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# AWS's FunctionName pattern (Invoke API reference), matched in full.
FUNCTION_NAME_PATTERN = re.compile(
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?"
    r"(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
MAX_ARN_LENGTH = 256  # AWS: FunctionName (ARN form) 1-256 characters
MAX_NAME_LENGTH = 64  # AWS: a bare function name is at most 64 characters
QUALIFIER_PATTERN = re.compile(r"\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_$]+")
MAX_QUALIFIER_LENGTH = 128  # AWS: Qualifier 1-128


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A parsed function reference. ``function_name`` is what goes in the Invoke path
    (name or ARN without the qualifier); ``qualifier`` goes in ``?Qualifier=``."""

    raw: str
    name: str
    qualifier: str | None
    account: str | None
    region: str | None
    partition: str | None

    @property
    def function_name(self) -> str:
        if self.partition is not None and self.region and self.account:
            return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.name}"
        if self.account:
            return f"{self.account}:function:{self.name}"
        return self.name

    def arn(self, region: str, account: str, partition: str = "aws") -> str:
        """The unqualified function ARN, filling in what the reference does not say."""
        return (
            f"arn:{self.partition or partition}:lambda:{self.region or region}:"
            f"{self.account or account}:function:{self.name}"
        )

    def __str__(self) -> str:
        return self.raw


def parse_function_name(value: str) -> FunctionRef:
    """Parse ``value``; raises ``ValueError`` saying which rule it breaks."""
    if not value:
        raise ValueError("a function name or ARN is required")
    if len(value) > MAX_ARN_LENGTH:
        raise ValueError(f"is {len(value)} characters; AWS allows at most {MAX_ARN_LENGTH}")
    m = FUNCTION_NAME_PATTERN.fullmatch(value)
    if not m:
        raise ValueError(
            f"{value!r} is not a Lambda function name, name:alias, name:version, or function ARN "
            "(AWS FunctionName pattern)"
        )
    arn_prefix, partition, region_part = m.group(1), m.group(2), m.group(3)
    account_part, function_kw = m.group(9), m.group(10)
    name, qualifier = m.group(11), m.group(13)
    if arn_prefix and not (region_part and account_part and function_kw):
        raise ValueError(f"{value!r}: a full ARN needs arn:aws:lambda:REGION:ACCOUNT:function:NAME")
    if account_part and not function_kw:
        raise ValueError(f"{value!r}: a partial ARN needs ACCOUNT:function:NAME")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"function name {name!r} is {len(name)} characters; AWS allows at most {MAX_NAME_LENGTH}")
    return FunctionRef(
        raw=value,
        name=name,
        qualifier=qualifier,
        account=account_part[:-1] if account_part else None,
        region=region_part[:-1] if region_part else None,
        partition=(partition or "aws") if arn_prefix else None,
    )
