"""Who eventrelay runs as: STS GetCallerIdentity with the standard credential chain.

Used for the default trusted principal. Any failure (no credentials, no network) returns None so the
caller can ask for ``--principal`` instead; the reason is returned beside it for the message.
"""

from __future__ import annotations

from typing import Any

IDENTITY_CONNECT_TIMEOUT = 3.0  # seconds: a CLI answer, not a delivery; fail fast and ask for --principal
IDENTITY_READ_TIMEOUT = 5.0
FALLBACK_REGION = "us-east-1"  # no region configured anywhere: any region answers GetCallerIdentity


def caller_identity(region: str | None, endpoint_url: str | None = None) -> tuple[str | None, str]:
    """``(arn, "")`` of the caller, or ``(None, reason)``."""
    import botocore.session
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError

    session = botocore.session.get_session()
    region = region or session.get_config_variable("region") or FALLBACK_REGION
    config = BotoConfig(
        connect_timeout=IDENTITY_CONNECT_TIMEOUT,
        read_timeout=IDENTITY_READ_TIMEOUT,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    try:
        client: Any = session.create_client("sts", region_name=region, endpoint_url=endpoint_url, config=config)
        answer = client.get_caller_identity()
    except ClientError as exc:
        return None, f"STS GetCallerIdentity failed: {exc.response.get('Error', {}).get('Code', 'error')}"
    except BotoCoreError as exc:
        return None, f"STS GetCallerIdentity failed: {exc}"
    arn = answer.get("Arn")
    return (str(arn), "") if arn else (None, "STS GetCallerIdentity returned no Arn")
