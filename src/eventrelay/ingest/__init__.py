"""The Segment-compatible Tracking API (DESIGN.md section 3): a raw ASGI app, no framework.

Request flow, one module per step::

    app.py        route the path, answer CORS / settings / errors, call the steps below
    body.py       read the body (bounded), gunzip (bounded), parse JSON to an object
    auth.py       the write key: HTTP Basic user, else ``writeKey`` in the body
    validate.py   required fields and types of one event (errors name the field)
    normalise.py  messageId, receivedAt, timestamp skew correction, context.ip, channel
    batch.py      split a batch, merge batch-level context/integrations/sentAt, partial acceptance
    encode.py     the stored form of an event, within the size and depth limits (one definition)
    cors.py       CORS headers and the preflight answer
    settings_endpoint.py  ``GET /v1/projects/{writeKey}/settings`` for analytics.js
    fast_http.py  plain event POSTs answered inside uvicorn's protocol, without ASGI (``ingest.fast_path``)
    http_limits.py  head/body time limits and the open-connection cap of the one port
"""
