"""Settings of the ``aws_lambda`` destination, named as in Segment's catalog (DESIGN.md section 4).

Every field is validated at config time; an error names the field and the rule.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from eventrelay.core.duration import Duration
from eventrelay.core.external_id import EXTERNAL_ID_REFUSAL
from eventrelay.core.spec import CALL_TYPES
from eventrelay.destinations.aws_lambda.function_name import FunctionRef, parse_function_name

MAX_CLIENT_CONTEXT_BYTES = 3583  # AWS: X-Amz-Client-Context, base64-encoded, at most 3,583 bytes
CLIENT_CONTEXT_KEYS = frozenset({"custom", "env", "client"})  # the only keys Lambda's Python runtime keeps
REGION_PATTERN = re.compile(r"^(eusc-)?[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role(/|/[\x21-\x7E]{1,510}/)[\w+=,.@-]{1,64}$")
# AWS Invoke request payload limits (Lambda quotas): what ``batch.max_bytes`` may be at most.
MAX_PAYLOAD_BYTES = {"RequestResponse": 6_291_456, "Event": 1_048_576}  # 6 MB synchronous, 1 MB asynchronous
DEFAULT_BATCH_EVENTS = 100
MAX_BATCH_EVENTS = 10_000  # events per invoke at most: beyond, one slow event holds up too many others
DEFAULT_BATCH_BYTES = 1_048_576  # 1 MB: within both invocation types' limits
MIN_BATCH_BYTES = 1_024  # below this hardly an event fits: surely a unit mistake (bytes, not KB)
DEFAULT_BATCH_WAIT = 1.0  # seconds
MAX_BATCH_WAIT = 60.0  # seconds: a waiting event is leased, and its latency grows by the wait


class Functions(BaseModel):
    """Per-call-type function overrides; call types absent here go to ``lambda``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    track: str | None = None
    identify: str | None = None
    page: str | None = None
    screen: str | None = None
    group: str | None = None
    alias: str | None = None
    events: list[str] | None = None
    """Track event names to deliver (``*`` = all). Default: all."""

    @field_validator("track", "identify", "page", "screen", "group", "alias")
    @classmethod
    def _valid_name(cls, v: str | None) -> str | None:
        if v is not None:
            parse_function_name(v)
        return v

    def override(self, call_type: str) -> str | None:
        """The function configured for ``call_type``, or None (it goes to ``lambda``)."""
        return getattr(self, call_type, None) if call_type in CALL_TYPES else None


class BatchSettings(BaseModel):
    """``batch``: many events per invoke, as ``{"batch": [event, ...]}`` (the /v1/batch shape).

    A batch leaves when it holds ``max_events``, when one more event would take the payload over
    ``max_bytes``, or ``max_wait`` after its first event, whichever comes first; it holds the
    events of one function only. An event too large to fit alone is not sent: it ends as a
    configuration error with the reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_events: int = Field(default=DEFAULT_BATCH_EVENTS, ge=1, le=MAX_BATCH_EVENTS)
    """Events per invoke at most, 1 to 10,000. Default 100."""
    max_bytes: int = Field(default=DEFAULT_BATCH_BYTES, ge=MIN_BATCH_BYTES)
    """The whole encoded payload at most, in bytes: at most 6,291,456 (6 MB) for RequestResponse
    and 1,048,576 (1 MB) for Event, AWS's Invoke limits. Default 1,048,576."""
    max_wait: Duration = Field(default=DEFAULT_BATCH_WAIT, ge=0, le=MAX_BATCH_WAIT)
    """How long a batch waits for more events after its first (an idle destination adds at most
    this to an event's latency; a busy one sends full batches at once), up to 60s. Default 1s."""


class AwsLambdaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    lambda_: str = Field(alias="lambda")
    """Function: name, name:alias, name:version, full ARN or partial ARN (required)."""
    region: str
    """AWS region, e.g. us-west-2 (required)."""
    role_address: str
    """ARN of the IAM role eventrelay assumes (required)."""
    external_id: None = None
    """Read-only: the workspace id. A value here is refused (confused deputy)."""
    client_context: dict[str, Any] = Field(default_factory=dict)
    """Sent base64 JSON as X-Amz-Client-Context (sync invokes only). Default {}."""
    log_type: Literal["None", "Tail"] = "None"
    """Tail keeps the last 4 KB of the function's log with the attempt. Default None."""
    invocation_type: Literal["RequestResponse", "Event"] = "RequestResponse"
    """RequestResponse (default; needed for Client Context, Tail, errors) or Event (async)."""
    functions: Functions = Field(default_factory=Functions)
    endpoint_url: str | None = None
    """AWS endpoint override for STS and Lambda (local runtime, LocalStack, moto, VPC endpoint)."""
    role_session_name: str = Field(default="eventrelay-lambda", pattern=r"^[\w+=,.@-]{2,64}$")
    """RoleSessionName used with AssumeRole. Default eventrelay-lambda."""
    batch: BatchSettings | None = None
    """Many events per invoke (``batch: {}`` for the defaults). Default: one event per invoke."""

    @field_validator("external_id", mode="before")
    @classmethod
    def _refuse_external_id(cls, v: Any) -> None:
        # a field validator (not a model one) so the error's path ends in .settings.external_id
        if v not in (None, ""):
            raise ValueError(EXTERNAL_ID_REFUSAL)
        return None

    @field_validator("lambda_")
    @classmethod
    def _valid_lambda(cls, v: str) -> str:
        parse_function_name(v)
        return v

    @field_validator("region")
    @classmethod
    def _valid_region(cls, v: str) -> str:
        if not REGION_PATTERN.match(v):
            raise ValueError(f"{v!r} is not an AWS region (like us-west-2)")
        return v

    @field_validator("role_address")
    @classmethod
    def _valid_role(cls, v: str) -> str:
        if not ROLE_ARN_PATTERN.match(v):
            raise ValueError(f"{v!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")
        return v

    @field_validator("client_context")
    @classmethod
    def _client_context_size(cls, v: dict[str, Any]) -> dict[str, Any]:
        size = len(encode_client_context(v) or b"")
        if size > MAX_CLIENT_CONTEXT_BYTES:
            raise ValueError(f"encodes to {size} bytes; AWS allows at most {MAX_CLIENT_CONTEXT_BYTES} (base64 JSON)")
        return v

    @field_validator("batch")
    @classmethod
    def _batch_fits_the_invocation_type(cls, v: BatchSettings | None, info: ValidationInfo) -> BatchSettings | None:
        invocation_type = info.data.get("invocation_type", "RequestResponse")
        limit = MAX_PAYLOAD_BYTES[invocation_type]
        if v is not None and v.max_bytes > limit:
            raise ValueError(
                f"max_bytes {v.max_bytes} is over {limit}, AWS's payload limit for {invocation_type} invokes"
                " (the whole encoded payload counts)"
            )
        return v

    @field_validator("endpoint_url")
    @classmethod
    def _valid_endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+(/.*)?$", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    def function_for(self, call_type: str) -> FunctionRef:
        return parse_function_name(self.functions.override(call_type) or self.lambda_)

    def all_functions(self) -> list[FunctionRef]:
        seen: dict[str, FunctionRef] = {}
        for ref in [self.lambda_, *(self.functions.override(t) for t in CALL_TYPES)]:
            if ref and ref not in seen:
                seen[ref] = parse_function_name(ref)
        return list(seen.values())


def client_context_payload(context: dict[str, Any]) -> dict[str, Any] | None:
    """What Lambda's Python runtime will show: a map without custom/env/client goes under ``custom``."""
    if not context:
        return None
    if CLIENT_CONTEXT_KEYS & context.keys():
        return context
    return {"custom": context}


def encode_client_context(context: dict[str, Any]) -> bytes | None:
    payload = client_context_payload(context)
    return None if payload is None else base64.b64encode(orjson.dumps(payload))
