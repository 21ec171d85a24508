"""What the configured destinations invoke: one ``Grant`` per function, grouped by role.

``select`` picks the destinations one set of IAM documents is for (one role): the one named, or every
destination when they all share one role.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventrelay.awsiam.arns import Resolved, resolve, role_account, role_partition
from eventrelay.config.model import Config, Destination
from eventrelay.core.errors import ConfigError
from eventrelay.core.spec import CALL_TYPES


@dataclass(frozen=True, slots=True)
class Grant:
    destination: str
    call_types: tuple[str, ...]
    """Call types this function receives (``lambda`` takes every type without an override)."""
    function: Resolved


def select(config: Config, destination: str | None) -> list[tuple[int, Destination]]:
    """The destinations (with their index in the config) that share the role the documents are for."""
    indexed = [(i, d) for i, d in enumerate(config.destinations) if d.type == "aws_lambda"]
    if destination is not None:
        chosen = [(i, d) for i, d in indexed if d.name == destination]
        if not chosen:
            names = ", ".join(d.name for _, d in indexed) or "none configured"
            raise ConfigError("--destination", f"no aws_lambda destination named {destination!r} ({names})")
        return chosen
    if not indexed:
        raise ConfigError("destinations", "no aws_lambda destination is configured")
    roles = sorted({d.settings.role_address for _, d in indexed})
    if len(roles) > 1:
        raise ConfigError(
            "--destination",
            f"the destinations use {len(roles)} different roles ({', '.join(roles)}); "
            "pick one destination with --destination NAME",
        )
    return indexed


def grants(
    config: Config,
    destination: str | None = None,
    *,
    account_id: str | None = None,
    region: str | None = None,
) -> list[Grant]:
    """Every function the selected destinations invoke, resolved to the ARN IAM checks."""
    out: list[Grant] = []
    for index, dest in select(config, destination):
        settings = dest.settings
        account = account_id or role_account(settings.role_address)
        partition = role_partition(settings.role_address)
        refs: dict[str, tuple[str, list[str]]] = {}
        base = f"destinations[{index}].settings"
        overridden = {t for t in CALL_TYPES if getattr(settings.functions, t)}
        default_types = [t for t in CALL_TYPES if t not in overridden]
        if default_types:
            refs.setdefault(settings.lambda_, (f"{base}.lambda", []))[1].extend(default_types)
        for call_type in CALL_TYPES:
            ref = getattr(settings.functions, call_type)
            if ref:
                refs.setdefault(ref, (f"{base}.functions.{call_type}", []))[1].append(call_type)
        for ref, (field, types) in refs.items():
            resolved = resolve(ref, region=region or settings.region, account=account, partition=partition, field=field)
            out.append(Grant(destination=dest.name, call_types=tuple(types), function=resolved))
    return out


def role_arn(config: Config, destination: str | None = None) -> str:
    return select(config, destination)[0][1].settings.role_address


def resource_arns(items: list[Grant]) -> list[str]:
    """The distinct ARNs to grant, in configuration order."""
    return list(dict.fromkeys(g.function.arn for g in items))
