"""Non-blocking batch pulls from a durable JetStream pull consumer.

``claim()`` must return what is due now, quickly, from many concurrent callers. nats-py's
``fetch`` falls back to a lingering pull when nothing is available; here each pull is one
``$JS.API.CONSUMER.MSG.NEXT`` request with ``no_wait`` on its own inbox, and it ends at the
batch size, at the server's status message (404 no messages / 408 request done), or at a
short deadline.
"""

from __future__ import annotations

import json
import time

from nats.aio.client import Client
from nats.aio.msg import Msg

# A no_wait pull is answered at once; this only guards against a lost status message (e.g. a
# reconnect in the middle), so a claim never hangs. Messages that arrive later are
# redelivered after AckWait.
PULL_DEADLINE = 2.0


async def pull(nc: Client, stream: str, consumer: str, batch: int) -> list[Msg]:
    """Up to ``batch`` messages available now from ``consumer`` of ``stream``."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    msgs: list[Msg] = []
    try:
        request = json.dumps({"batch": batch, "no_wait": True}).encode()
        await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", request, reply=inbox)
        deadline = time.monotonic() + PULL_DEADLINE
        while len(msgs) < batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                msg = await sub.next_msg(timeout=left)
            except TimeoutError:
                break
            if _is_status(msg):
                break
            msgs.append(msg)
        return msgs
    finally:
        await sub.unsubscribe()


def _is_status(msg: Msg) -> bool:
    # deliveries carry an ack reply subject; status messages (404, 408, 409) do not
    return not msg.reply and bool(msg.headers and "Status" in msg.headers)
