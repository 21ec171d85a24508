"""Local IAM: roles with a trust policy (who may assume them, with which External ID) and a permission
policy (which functions they may invoke).

Trust: the caller's ARN must match one of ``trusted_principals`` (``*``, an account id, ``ACCOUNT:root``
style ARNs meaning the whole account, or an ARN with ``*``/``?`` wildcards), and ``sts:ExternalId`` must
equal one of the role's External IDs. A missing External ID is denied (AWS's ``StringEquals`` condition
fails on an absent key). Permission: ``lambda:InvokeFunction`` on the function ARN (qualified when the
caller gave a qualifier, as IAM evaluates it); a bare function name in ``allow_invoke`` stands for that
function with and without qualifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from eventrelay.config.model import Config, LocalAws, LocalAwsRole

ROLE_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:iam::(?P<account>\d{12}):role(?P<path>/(?:[\x21-\x7E]*/)?)(?P<name>[\w+=,.@-]{1,64})$"
)


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    arn: str
    role_id: str
    trusted_principals: tuple[str, ...]
    external_ids: tuple[str, ...] | None
    """None: no External ID condition (only when configured as an empty list)."""
    allow_invoke: tuple[str, ...]
    allow_get_concurrency: tuple[str, ...] = ()
    """Functions whose reserved concurrency it may read (``lambda:GetFunctionConcurrency``)."""

    def trusts(self, caller_arn: str, account: str) -> bool:
        return any(_principal_matches(p, caller_arn, account) for p in self.trusted_principals)

    def external_id_ok(self, external_id: str | None) -> bool:
        if self.external_ids is None:
            return True
        return external_id is not None and external_id in self.external_ids

    def may_invoke(self, function_arn: str, function_name: str) -> bool:
        return any(_resource_matches(p, function_arn, function_name) for p in self.allow_invoke)

    def may_get_concurrency(self, function_arn: str, function_name: str) -> bool:
        return any(_resource_matches(p, function_arn, function_name) for p in self.allow_get_concurrency)


class Roles:
    def __init__(self, roles: dict[str, Role], account: str) -> None:
        self.roles = roles
        self.account = account

    @classmethod
    def from_config(cls, config: Config | None, local: LocalAws) -> Roles:
        declared = dict(local.roles) or _destination_roles(config)
        default_ids = _default_external_ids(config)
        roles = {name: _role(name, role, local.account_id, default_ids) for name, role in declared.items()}
        return cls(roles, local.account_id)

    def by_arn(self, arn: str) -> Role | None:
        """The role an ARN names (any path), or None when it is malformed, elsewhere, or not declared."""
        m = ROLE_ARN.match(arn)
        if not m or m.group("account") != self.account:
            return None
        return self.roles.get(m.group("name"))


def _role(name: str, role: LocalAwsRole, account: str, default_ids: tuple[str, ...]) -> Role:
    if role.external_id is None:
        ids: tuple[str, ...] | None = default_ids
    elif isinstance(role.external_id, str):
        ids = (role.external_id,)
    else:
        ids = tuple(role.external_id) or None
    return Role(
        name=name,
        arn=f"arn:aws:iam::{account}:role/{name}",
        role_id=_role_id(account, name),
        trusted_principals=tuple(role.trusted_principals),
        external_ids=ids,
        allow_invoke=tuple(role.allow_invoke),
        allow_get_concurrency=tuple(
            role.allow_invoke if role.allow_get_concurrency is None else role.allow_get_concurrency
        ),
    )


def _destination_roles(config: Config | None) -> dict[str, LocalAwsRole]:
    """Default: every destination's role, trusting anyone who presents the External ID."""
    roles: dict[str, LocalAwsRole] = {}
    for dest in config.destinations if config else []:
        needs = dest.kind.iam_needs(dest.settings)
        m = ROLE_ARN.match(needs.role_arn) if needs is not None else None
        if m:
            roles[m.group("name")] = LocalAwsRole()
    return roles


def _default_external_ids(config: Config | None) -> tuple[str, ...]:
    """The workspace id; without a workspace, the id (name) of any source, as the hosted service does."""
    if config is None:
        return ()
    shared = config.external_id_for(None)
    return (shared,) if shared is not None else tuple(s.name for s in config.sources)


def _role_id(account: str, name: str) -> str:
    """A stable, real-looking role id (AROA + 17 characters)."""
    import hashlib

    digest = hashlib.sha256(f"{account}:{name}".encode()).hexdigest().upper()
    return "AROA" + "".join(c for c in digest if c.isalnum())[:17]


def _principal_matches(pattern: str, caller_arn: str, account: str) -> bool:
    if pattern == "*":
        return True
    if re.fullmatch(r"\d{12}", pattern):
        pattern = f"arn:aws:iam::{pattern}:root"
    root = re.fullmatch(r"arn:aws[a-zA-Z-]*:iam::(\d{12}):root", pattern)
    if root:  # the account as principal: any identity of that account
        parts = caller_arn.split(":")
        return len(parts) > 4 and parts[4] == root.group(1)
    return _wildcard(pattern).fullmatch(caller_arn) is not None


def _resource_matches(pattern: str, function_arn: str, function_name: str) -> bool:
    if not pattern.startswith("arn:"):
        # A bare name (wildcards allowed): that function, with or without a qualifier.
        return _wildcard(pattern).fullmatch(function_name) is not None
    return _wildcard(pattern).fullmatch(function_arn) is not None


@lru_cache(maxsize=1024)  # a few patterns per role, matched on every invoke
def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM wildcards: ``*`` any run of characters (``:`` included), ``?`` one character."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))
