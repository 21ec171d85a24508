"""eventrelay's example Lambda handler: prints each event it receives and answers {"ok": true}.

It runs in AWS's own runtime (awslambdaric), so the same file works unchanged on AWS Lambda
(handler: ``handler.handle``). Edit it: ``eventrelay serve`` runs your copy in its data directory.
"""

from __future__ import annotations

from typing import Any


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event.get("type", "?")
    who = event.get("userId") or event.get("anonymousId") or "?"
    what = event.get("event") or event.get("name") or ""
    print(
        f"received {kind} from {who}: {what}".rstrip(": "),
        f"(messageId {event.get('messageId', '?')}, request {context.aws_request_id})",
    )
    return {"ok": True}
