"""The IAM permission policy: ``lambda:InvokeFunction`` on exactly the functions eventrelay invokes."""

from __future__ import annotations

from typing import Any

POLICY_VERSION = "2012-10-17"  # the current IAM policy language version
INVOKE_ACTION = "lambda:InvokeFunction"
STATEMENT_ID = "EventRelayInvoke"


def permission_policy(resources: list[str]) -> dict[str, Any]:
    """The policy document allowing ``lambda:InvokeFunction`` on ``resources`` (ARNs)."""
    if not resources:
        raise ValueError("a permission policy needs at least one function ARN")
    return {
        "Version": POLICY_VERSION,
        "Statement": [{"Sid": STATEMENT_ID, "Effect": "Allow", "Action": INVOKE_ACTION, "Resource": list(resources)}],
    }
