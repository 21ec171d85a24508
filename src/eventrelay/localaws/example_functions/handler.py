"""eventrelay's example Lambda handler: prints each event it receives and answers {"ok": true}.

It runs in AWS's own runtime (awslambdaric), so the same file works unchanged on AWS Lambda
(handler: ``handler.handle``). Edit it: ``eventrelay serve`` runs your copy in its data directory.

A destination with ``batch`` set sends many events per invoke as ``{"batch": [event, ...]}``.
The handler then answers which events failed, by messageId, the way Lambda's own event sources
expect: ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}``. Only those are retried;
an empty list means every event was handled. Raising fails (and retries) the whole batch.
"""

from __future__ import annotations

from typing import Any


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "batch" in event:
        failures = []
        for item in event["batch"]:
            try:
                show(item, context)
            except Exception as exc:  # this event failed: report it, keep going with the others
                print(f"failed on {item.get('messageId')}: {exc}")
                failures.append({"itemIdentifier": item.get("messageId")})
        return {"batchItemFailures": failures}
    show(event, context)
    return {"ok": True}


def show(event: dict[str, Any], context: Any) -> None:
    kind = event.get("type", "?")
    who = event.get("userId") or event.get("anonymousId") or "?"
    what = event.get("event") or event.get("name") or ""
    print(
        f"received {kind} from {who}: {what}".rstrip(": "),
        f"(messageId {event.get('messageId', '?')}, request {context.aws_request_id})",
    )
