"""The Invoke requests go through the ``HttpTransport`` a destination is given: a recording
transport sees each signed request and answers it, with no Invoke server and no monkeypatching
(STS is still moto's, with IAM authentication on)."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventrelay.core.errors import TransportError
from eventrelay.core.outcome import Category, Verdict
from eventrelay.destinations.http_client import HttpClient, HttpRequest, HttpResponse, HttpTransport
from tests.destinations.lambda_doubles import REGION, MakeDestination, RecordingLambda
from tests.support.send import request_for

TRACK = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-1"}
DELIVERED = HttpResponse(200, {b"x-amz-executed-version": b"7"}, b'{"ok": true}')


@dataclass
class RecordingTransport:
    """Records every request; answers from ``answers`` in order (an exception is raised), then
    forwards to ``inner`` when one is given, else answers ``DELIVERED``."""

    answers: list[HttpResponse | TransportError] = field(default_factory=list)
    inner: HttpTransport | None = None
    requests: list[HttpRequest] = field(default_factory=list)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, TransportError):
                raise answer
            return answer
        return DELIVERED if self.inner is None else await self.inner.handle(request)


async def test_the_signed_invoke_goes_to_the_given_transport(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    transport = RecordingTransport()
    dest = make_destination(**{"lambda": "my-fn:live"}, transport=transport)
    request = request_for(TRACK)

    outcome = await dest.send(request, 10.0)

    assert (outcome.category, outcome.executed_version, outcome.response_body) == (
        Category.DELIVERED,
        "7",
        '{"ok": true}',
    )
    [sent] = transport.requests
    assert sent.method == "POST"
    assert sent.url == f"{lambda_server.url}/2015-03-31/functions/my-fn/invocations?Qualifier=live"
    assert sent.body == request.body
    assert sent.headers["X-Amz-Invocation-Type"] == "RequestResponse"
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert f"/{REGION}/lambda/aws4_request" in sent.headers["Authorization"]
    assert lambda_server.requests == []  # nothing went to the network but the transport's


async def test_the_transports_answers_and_failures_are_classified(make_destination: MakeDestination) -> None:
    throttled = HttpResponse(
        429, {b"x-amzn-errortype": b"TooManyRequestsException", b"retry-after": b"2"}, b'{"message": "Rate exceeded"}'
    )
    transport = RecordingTransport([throttled, TransportError("connection reset by peer")])
    dest = make_destination(transport=transport)

    first = await dest.send(request_for(TRACK), 10.0)
    second = await dest.send(request_for(TRACK), 10.0)

    assert (first.category, first.verdict, first.retry_after) == (Category.THROTTLED, Verdict.RETRY, 2.0)
    assert (second.category, second.verdict, second.error_type) == (
        Category.AWS_ERROR,
        Verdict.RETRY,
        "ConnectionError",
    )
    assert "connection reset by peer" in (second.error_message or "")
    assert len(transport.requests) == 2


async def test_a_given_transport_stays_its_owners_to_close(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    client = HttpClient(lambda_server.url)
    transport = RecordingTransport(inner=client)
    try:
        dest = make_destination(transport=transport)
        assert (await dest.send(request_for(TRACK), 10.0)).ok
        await dest.close()
        dest = make_destination(transport=transport)
        assert (await dest.send(request_for(TRACK), 10.0)).ok  # the client still serves
    finally:
        await client.close()
    assert len(lambda_server.requests) == 2 and len(transport.requests) == 2
