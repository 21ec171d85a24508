"""Create-or-update of a JetStream stream, shared by the queue and the delivery log backends."""

from __future__ import annotations

from typing import Any

from nats.js.errors import APIError

ERR_STREAM_IN_USE = 10058  # stream name already in use with a different configuration


async def ensure_stream(js: Any, config: Any) -> None:
    """Make the stream ``config`` describes, or bring an existing one (made by another process,
    or with an older configuration) up to it."""
    try:
        await js.add_stream(config)
    except APIError as exc:
        if exc.err_code != ERR_STREAM_IN_USE:
            raise
        await js.update_stream(config)
