"""The role's trust relationship: who may assume it (the principal), and with which External ID.

The External ID is the workspace id; without a workspace it is the id (name) of the source each event
came from, as the hosted service does, so the trust policy lists every source routed to the role.
``sts:ExternalId`` is one value or a list (several workspaces or sources sharing one role).
"""

from __future__ import annotations

import re
from typing import Any

from eventrelay.awsiam.grants import role_users, select
from eventrelay.awsiam.policy import POLICY_VERSION
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError

ASSUME_ACTION = "sts:AssumeRole"
# What IAM takes as an AWS principal: an account id, or a user/role/root ARN.
PRINCIPAL_PATTERN = re.compile(
    r"^(\d{12}|arn:aws[a-zA-Z-]*:iam::\d{12}:(root|user/[\x21-\x7E]+|role/[\x21-\x7E]+)"
    r"|arn:aws[a-zA-Z-]*:sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+)$"
)
PRINCIPAL_PLACEHOLDER = "<ACCOUNT_ID_OR_ARN_EVENTRELAY_RUNS_AS>"
"""Put in a trust policy when the identity eventrelay runs as is unknown (no AWS credentials here):
IAM refuses it, so a policy with it cannot be applied by mistake before it is filled in."""
_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-zA-Z-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/[^/]+$")


def external_ids(config: Config, destination: str | None = None, extra: list[str] | None = None) -> list[str]:
    """The External IDs the role must accept: the workspace id, else the sources routed to the role."""
    shared = config.external_id_for(None)
    if shared is not None:
        ids = [shared]
    else:
        all_sources = [s.name for s in config.sources]
        chosen = select(config, destination) if destination or role_users(config) else []
        ids = []
        for user in chosen:
            sources = user.destination.sources
            ids.extend(sources if sources is not None else all_sources)
        if not chosen:  # no destination yet: every source may be routed to the role later
            ids = all_sources
    ids = list(dict.fromkeys([*ids, *(extra or [])]))
    if not ids:
        raise ConfigError(
            "workspace.id",
            "no External ID: configure workspace.id (the External ID) or at least one source, or give --external-id",
        )
    return ids


def principal_from_identity(arn: str) -> str:
    """The principal to trust for the identity eventrelay runs as (STS GetCallerIdentity ``Arn``).

    A role session (``sts::...:assumed-role/NAME/SESSION``) becomes its role ARN, since a session ARN
    changes with every session. The role's path is not in the session ARN: a role under a path
    (``role/team/NAME``) must be given with ``--principal``.
    """
    m = _ASSUMED_ROLE.match(arn)
    if m:
        return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}"
    return arn


def check_principal(principal: str) -> str:
    if not PRINCIPAL_PATTERN.match(principal):
        raise ConfigError(
            "--principal",
            f"{principal!r} is not an AWS account id or IAM user/role/root ARN "
            "(e.g. arn:aws:iam::123456789012:role/eventrelay)",
        )
    return principal


def trust_policy(principal: str | None, ids: list[str]) -> dict[str, Any]:
    """The trust policy document: ``principal`` may assume the role with one of ``ids``; None (the
    identity is unknown) puts ``PRINCIPAL_PLACEHOLDER`` for the user to fill in."""
    if not ids:
        raise ValueError("a trust policy needs at least one External ID")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": PRINCIPAL_PLACEHOLDER if principal is None else check_principal(principal)},
                "Action": ASSUME_ACTION,
                "Condition": {"StringEquals": {"sts:ExternalId": ids[0] if len(ids) == 1 else list(ids)}},
            }
        ],
    }
