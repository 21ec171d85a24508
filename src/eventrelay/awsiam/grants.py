"""What the configured destinations invoke: one ``Grant`` per function, grouped by role.

Each destination type says what it needs of IAM (``DestinationType.iam``: the role and the
functions); types that need no AWS role are left out. ``select`` picks the destinations one set
of IAM documents is for (one role): the one named, or every destination when they all share one
role.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventrelay.awsiam.arns import Resolved, resolve, role_account, role_partition
from eventrelay.config.model import Config, Destination
from eventrelay.core.errors import ConfigError
from eventrelay.destinations import registry
from eventrelay.destinations.kind import IamNeeds


@dataclass(frozen=True, slots=True)
class Grant:
    destination: str
    call_types: tuple[str, ...]
    """Call types this function receives (``lambda`` takes every type without an override)."""
    function: Resolved


@dataclass(frozen=True, slots=True)
class RoleUser:
    """A configured destination whose type assumes an AWS role, with what it needs of IAM."""

    index: int
    """Its position in ``destinations`` (errors name ``destinations[index].settings...``)."""
    destination: Destination
    needs: IamNeeds


def role_users(config: Config) -> list[RoleUser]:
    """Every configured destination whose type needs an AWS role, in configuration order."""
    found = [(i, d, d.kind.iam_needs(d.settings)) for i, d in enumerate(config.destinations)]
    return [RoleUser(i, d, needs) for i, d, needs in found if needs is not None]


def select(config: Config, destination: str | None) -> list[RoleUser]:
    """The destinations that share the role the documents are for."""
    users = role_users(config)
    kinds = "/".join(n for n in registry.names() if registry.get(n).iam is not None)
    if destination is not None:
        chosen = [u for u in users if u.destination.name == destination]
        if not chosen:
            names = ", ".join(u.destination.name for u in users) or "none configured"
            raise ConfigError("--destination", f"no {kinds} destination named {destination!r} ({names})")
        return chosen
    if not users:
        raise ConfigError("destinations", f"no {kinds} destination is configured")
    roles = sorted({u.needs.role_arn for u in users})
    if len(roles) > 1:
        raise ConfigError(
            "--destination",
            f"the destinations use {len(roles)} different roles ({', '.join(roles)}); "
            "pick one destination with --destination NAME",
        )
    return users


def grants(
    config: Config,
    destination: str | None = None,
    *,
    account_id: str | None = None,
    region: str | None = None,
) -> list[Grant]:
    """Every function the selected destinations invoke, resolved to the ARN IAM checks."""
    out: list[Grant] = []
    for user in select(config, destination):
        needs = user.needs
        account = account_id or role_account(needs.role_arn)
        partition = role_partition(needs.role_arn)
        for use in needs.functions:
            field = f"destinations[{user.index}].settings.{use.field}"
            resolved = resolve(
                use.ref, region=region or needs.region, account=account, partition=partition, field=field
            )
            out.append(Grant(destination=user.destination.name, call_types=use.call_types, function=resolved))
    return out


def role_arn(config: Config, destination: str | None = None) -> str:
    return select(config, destination)[0].needs.role_arn


def resource_arns(items: list[Grant]) -> list[str]:
    """The distinct ARNs to grant, in configuration order."""
    return list(dict.fromkeys(g.function.arn for g in items))


def function_arns(items: list[Grant]) -> list[str]:
    """The distinct unqualified function ARNs (``GetFunctionConcurrency`` is per function, its
    versions and aliases share the reserved concurrency), in configuration order."""
    return list(dict.fromkeys(g.function.unqualified_arn for g in items))
