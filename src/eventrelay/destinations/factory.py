"""Build a destination instance from its configuration entry."""

from __future__ import annotations

from eventrelay.config.model import Config
from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.destinations.base import Destination


def build_destination(dest: DestinationConfig, config: Config) -> Destination:
    if dest.type == "aws_lambda":
        from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination

        return AwsLambdaDestination(
            dest.name,
            dest.settings,
            external_id=_external_id(config, dest),
            concurrency=dest.delivery.concurrency,  # one pooled connection per attempt in flight
        )
    raise ValueError(f"unknown destination type {dest.type!r}")


def _external_id(config: Config, dest: DestinationConfig) -> str | None:
    """The workspace id; None means 'the source id of each event' (no workspace configured)."""
    return config.workspace.id if config.workspace else None
