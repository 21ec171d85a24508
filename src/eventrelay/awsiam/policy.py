"""The IAM permission policy: ``lambda:InvokeFunction`` on exactly the functions eventrelay invokes,
and (optional) ``lambda:GetFunctionConcurrency`` on those functions: with it, delivery starts at a
function's reserved concurrency instead of finding it by throttles (``delivery/aimd.py``); without
it, nothing fails."""

from __future__ import annotations

from typing import Any

POLICY_VERSION = "2012-10-17"  # the current IAM policy language version
INVOKE_ACTION = "lambda:InvokeFunction"
STATEMENT_ID = "EventRelayInvoke"
READ_CONCURRENCY_ACTION = "lambda:GetFunctionConcurrency"
READ_CONCURRENCY_STATEMENT_ID = "EventRelayReadReservedConcurrencyOptional"


def permission_policy(resources: list[str], read_concurrency: list[str] | None = None) -> dict[str, Any]:
    """The policy document allowing ``lambda:InvokeFunction`` on ``resources`` (ARNs), and
    ``lambda:GetFunctionConcurrency`` on ``read_concurrency`` (unqualified function ARNs) if any."""
    if not resources:
        raise ValueError("a permission policy needs at least one function ARN")
    readable = list(read_concurrency) if read_concurrency else None
    return {"Version": POLICY_VERSION, "Statement": statements(list(resources), readable)}


def statements(invoke: Any, read_concurrency: Any = None) -> list[dict[str, Any]]:
    """The policy's statements: invoke ``invoke``, and (the optional grant) read the reserved
    concurrency of ``read_concurrency`` unless None. Resources are ARN lists, or CloudFormation
    references to them (``cloudformation.py``)."""
    found: list[dict[str, Any]] = [
        {"Sid": STATEMENT_ID, "Effect": "Allow", "Action": INVOKE_ACTION, "Resource": invoke}
    ]
    if read_concurrency is not None:
        found.append(
            {
                "Sid": READ_CONCURRENCY_STATEMENT_ID,
                "Effect": "Allow",
                "Action": READ_CONCURRENCY_ACTION,
                "Resource": read_concurrency,
            }
        )
    return found
