"""Reading a function's reserved concurrency (``GetFunctionConcurrency``) for flow control.

The answer is ``{"ReservedConcurrentExecutions": N}``, or ``{}`` when the function has none. The
permission (``lambda:GetFunctionConcurrency``) is an optional grant: a role without it is asked
once per function, then eventrelay starts at the configured concurrency and adapts to throttles
(``delivery/aimd.py``). Nothing here raises: every failure means "unknown".
"""

from __future__ import annotations

import logging

import orjson

from eventrelay.destinations.aws_lambda.classify import ACCESS_DENIED_CODES, CONFIGURATION_CODES
from eventrelay.destinations.aws_lambda.invoke import InvokeResponse

log = logging.getLogger("eventrelay.aws_lambda")

FIELD = "ReservedConcurrentExecutions"


class Answer:
    """What one ``GetFunctionConcurrency`` answer means: ``value`` (None: no reserved
    concurrency, or unknown) and whether asking again can tell more (``final``)."""

    __slots__ = ("final", "value")

    def __init__(self, value: int | None, *, final: bool) -> None:
        self.value = value
        self.final = final


def read_answer(resp: InvokeResponse, destination: str, function: str) -> Answer:
    """Interpret ``resp``; a refusal (not allowed, unknown function) is final and logged once."""
    if resp.status == 200:
        try:
            doc = orjson.loads(resp.body or b"{}")
        except orjson.JSONDecodeError:
            return Answer(None, final=False)
        value = doc.get(FIELD) if isinstance(doc, dict) else None
        return Answer(value if isinstance(value, int) and not isinstance(value, bool) else None, final=True)
    code, message = resp.error()
    if code in ACCESS_DENIED_CODES or code in CONFIGURATION_CODES or resp.status in (403, 404):
        log.info(
            "destination %s: cannot read the reserved concurrency of %s (%s: %s); delivery starts at the"
            " configured concurrency and adapts to throttles (the optional grant"
            " lambda:GetFunctionConcurrency, in `eventrelay aws policy`, lets it start at the function's own)",
            destination,
            function,
            code or resp.status,
            message or "",
        )
        return Answer(None, final=True)
    return Answer(None, final=False)  # throttled, 5xx: ask again later
