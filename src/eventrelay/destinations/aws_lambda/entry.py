"""The ``aws_lambda`` type's registry entry (``destinations/registry.py``)."""

from __future__ import annotations

from eventrelay.core.spec import CALL_TYPES
from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings
from eventrelay.destinations.base import Destination
from eventrelay.destinations.kind import BuildSpec, DestinationType, FunctionUse, IamNeeds


def build(spec: BuildSpec[AwsLambdaSettings]) -> Destination:
    """One event per invoke, or with ``batch`` set a ``BatchDestination`` (``batching.py``)."""
    from eventrelay.destinations.aws_lambda.batching import BatchingAwsLambdaDestination  # botocore: when used
    from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination

    external_id = spec.workspace_id  # None: each event's source id
    concurrency = spec.concurrency  # one pooled connection per attempt (single or batch) in flight
    if spec.settings.batch is not None:
        return BatchingAwsLambdaDestination(
            spec.name, spec.settings, spec.settings.batch, external_id=external_id, concurrency=concurrency
        )
    return AwsLambdaDestination(spec.name, spec.settings, external_id=external_id, concurrency=concurrency)


def iam(settings: AwsLambdaSettings) -> IamNeeds:
    """The role, and every function with the call types it receives (``lambda`` takes every call
    type without an override), in configuration order."""
    uses: dict[str, tuple[str, list[str]]] = {}
    default_types = [t for t in CALL_TYPES if not settings.functions.override(t)]
    if default_types:
        uses[settings.lambda_] = ("lambda", default_types)
    for call_type in CALL_TYPES:
        ref = settings.functions.override(call_type)
        if ref:
            uses.setdefault(ref, (f"functions.{call_type}", []))[1].append(call_type)
    return IamNeeds(
        role_arn=settings.role_address,
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        functions=tuple(FunctionUse(ref, field, tuple(types)) for ref, (field, types) in uses.items()),
    )


def summary(settings: AwsLambdaSettings) -> dict[str, str | None]:
    batch = settings.batch
    shown = None if batch is None else f"{batch.max_events} events, {batch.max_bytes} bytes, {batch.max_wait:g}s"
    return {"function": settings.lambda_, "batch": shown}


AWS_LAMBDA = DestinationType(
    name="aws_lambda",
    settings_model=AwsLambdaSettings,
    catalog_names=("AWS Lambda", "Amazon Lambda"),
    build=build,
    iam=iam,
    summary=summary,
    endpoint_settings=("endpoint_url",),
    declined="its functions.events allow-list",
)
