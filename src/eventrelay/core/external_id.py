"""The External ID: what eventrelay presents as ``sts:ExternalId`` when it assumes a destination's role.

It is the workspace id; when no workspace id is configured, the id (name) of the source the event
came from, as the hosted service does. It is never a per-destination value: letting each
destination choose it would let one workspace assume another's role (the confused-deputy problem).
"""

from __future__ import annotations

EXTERNAL_ID_REFUSAL = (
    "is read-only: the External ID is always the workspace id (or the source id without a workspace). "
    "Letting each destination choose it would let one workspace assume another's role (the "
    "confused-deputy problem); put the workspace id in the role's trust policy instead"
)
"""Why a configured External ID is refused (config file, Config API)."""


def external_id(workspace_id: str | None, source: str | None) -> str | None:
    """The External ID for an event from ``source``: ``workspace_id``, else ``source``; None when
    neither is known (``source=None`` asks for the one every event shares, if there is one)."""
    return workspace_id or source or None
