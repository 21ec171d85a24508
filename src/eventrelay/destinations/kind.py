"""A destination type's declaration: everything the rest of eventrelay needs to know of it.

One ``DestinationType`` per folder of ``destinations/``, registered by one line in
``destinations/registry.py``. The config model validates ``settings`` with its model, routing
matches its catalog names, the runtime builds instances with ``build``, the IAM tooling reads
``iam``, the admin API lists ``summary``, the Config API guards its ``endpoint_settings``, and
``eventrelay send`` explains a refusal with ``declined``. How an instance tests its connection is
not a field: an instance that can implements ``base.CheckableDestination``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from eventrelay.core.external_id import external_id
from eventrelay.destinations.base import Destination

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class BuildSpec(Generic[S]):
    """What one destination instance is built from."""

    name: str
    """The configured destination name."""
    settings: S
    """The ``settings`` of the entry, validated with the type's model."""
    concurrency: int
    """Attempts in flight for this destination (``delivery.concurrency``): size pools to it."""
    workspace_id: str | None
    """The workspace id, or None: then the External ID is each event's source (``external_id_for``)."""

    def external_id_for(self, source: str | None) -> str | None:
        """The External ID for an event from ``source`` (``core.external_id``)."""
        return external_id(self.workspace_id, source)


@dataclass(frozen=True, slots=True)
class FunctionUse:
    """One Lambda function a destination invokes, as configured."""

    ref: str
    """The function as written (name, name:alias, ARN, partial ARN)."""
    field: str
    """Where it is written, under ``settings`` (``lambda``, ``functions.track``): errors name it."""
    call_types: tuple[str, ...]
    """The call types sent to it."""


@dataclass(frozen=True, slots=True)
class IamNeeds:
    """What a destination asks of AWS IAM: the role eventrelay assumes (with the External ID) and
    the functions it invokes with it. ``awsiam`` turns it into the permission policy, the trust
    policy and the CloudFormation template."""

    role_arn: str
    region: str
    """The region bare function names and partial ARNs are in, and STS's."""
    endpoint_url: str | None
    """The AWS endpoint override, if any (the identity check asks STS there)."""
    functions: tuple[FunctionUse, ...]


def no_summary(settings: BaseModel) -> Mapping[str, str | None]:
    return {}


@dataclass(frozen=True, slots=True)
class DestinationType(Generic[S]):
    """One destination type (e.g. ``aws_lambda``)."""

    name: str
    """The ``type`` of a destination entry in the configuration."""
    settings_model: type[S]
    """Validates the entry's ``settings``: field by field, unknown keys refused."""
    catalog_names: tuple[str, ...]
    """Names Segment's catalog gives the type, as they appear in an event's ``integrations``
    (matched case-sensitively, as Segment does)."""
    build: Callable[[BuildSpec[S]], Destination]
    """A running instance from its configuration."""
    iam: Callable[[S], IamNeeds] | None = None
    """The IAM role and grants it needs; None: it needs no AWS role."""
    summary: Callable[[S], Mapping[str, str | None]] = no_summary
    """Fields the admin API lists beside each destination (``{"function": ...}``)."""
    endpoint_settings: tuple[str, ...] = ()
    """Settings that point the destination at a host it sends signed requests to: set through the
    Config API, they must name a host on ``admin.endpoint_allow_list``."""
    declined: str = "its settings route this event elsewhere"
    """What ``eventrelay send`` says when the destination does not want the test event."""

    def iam_needs(self, settings: S) -> IamNeeds | None:
        """What a destination of this type with ``settings`` needs of IAM; None: no AWS role."""
        return None if self.iam is None else self.iam(settings)
