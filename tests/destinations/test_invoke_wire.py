"""What goes on the wire to Lambda, checked at a recording Invoke server."""

from __future__ import annotations

import orjson

from eventrelay.core.outcome import Category
from eventrelay.destinations.aws_lambda.credentials import RoleCredentialCache
from eventrelay.destinations.aws_lambda.destination import AwsLambdaDestination
from tests.destinations.lambda_doubles import REGION, MakeDestination, RecordingLambda, reply, settings
from tests.support.send import request_for

STS_ACCESS_DENIED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not trusted</Message>"
    b"</Error><RequestId>1</RequestId></ErrorResponse>"
)
TRACK = {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m-1"}


async def _send(dest: AwsLambdaDestination, event: dict[str, object]) -> object:
    return await dest.send(request_for(event), 10.0)


async def test_invoke_request_has_path_headers_and_payload(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(**{"lambda": "my-fn:live"}, log_type="Tail", client_context={"app": "shop"})
    body = orjson.dumps(TRACK)

    outcome = await dest.send(request_for(TRACK, body=body), 10.0)

    [rec] = lambda_server.requests
    assert rec.method == "POST"
    assert rec.path == "/2015-03-31/functions/my-fn/invocations"
    assert rec.query == "Qualifier=live"
    assert rec.body == body
    assert rec.headers["x-amz-invocation-type"] == "RequestResponse"
    assert rec.headers["x-amz-log-type"] == "Tail"
    assert rec.client_context == {"custom": {"app": "shop"}}
    assert "content-type" not in rec.headers  # as botocore: no Content-Type on the Invoke payload
    assert rec.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert f"/{REGION}/lambda/aws4_request" in rec.headers["authorization"]
    assert outcome.category is Category.DELIVERED  # type: ignore[attr-defined]
    assert outcome.log_tail == "START RequestId: 1\nhello from the handler\nEND"  # type: ignore[attr-defined]
    assert outcome.executed_version == "$LATEST"  # type: ignore[attr-defined]
    assert outcome.request == {  # type: ignore[attr-defined]
        "function": "my-fn",
        "qualifier": "live",
        "invocation_type": "RequestResponse",
        "log_type": "Tail",
        "client_context": {"custom": {"app": "shop"}},
        "region": REGION,
        "role": settings().role_address,
    }


async def test_full_arn_with_version_is_split_into_path_and_qualifier(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(**{"lambda": "arn:aws:lambda:us-west-2:123456789012:function:orders:7"})

    outcome = await _send(dest, TRACK)

    [rec] = lambda_server.requests
    arn = "arn%3Aaws%3Alambda%3Aus-west-2%3A123456789012%3Afunction%3Aorders"
    assert rec.path == f"/2015-03-31/functions/{arn}/invocations"
    assert rec.query == "Qualifier=7"
    assert outcome.function == "arn:aws:lambda:us-west-2:123456789012:function:orders"  # type: ignore[attr-defined]
    assert outcome.qualifier == "7"  # type: ignore[attr-defined]


async def test_latest_qualifier_and_partial_arn_are_encoded(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(**{"lambda": "123456789012:function:orders:$LATEST"})

    await _send(dest, TRACK)

    [rec] = lambda_server.requests
    assert rec.path == "/2015-03-31/functions/123456789012%3Afunction%3Aorders/invocations"
    assert rec.query == "Qualifier=%24LATEST"


async def test_each_call_type_goes_to_its_function(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(functions={"identify": "users-fn", "screen": "screens-fn:v2"})

    for call_type in ("track", "identify", "page", "screen", "group", "alias"):
        assert (await _send(dest, {"type": call_type, "userId": "u"})).ok  # type: ignore[attr-defined]

    paths = [(r.path.split("/")[3], r.query) for r in lambda_server.requests]
    assert paths == [
        ("my-fn", ""),
        ("users-fn", ""),
        ("my-fn", ""),
        ("screens-fn", "Qualifier=v2"),
        ("my-fn", ""),
        ("my-fn", ""),
    ]


async def test_client_context_with_lambda_keys_is_sent_as_is_and_no_context_sends_no_header(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    with_keys = make_destination(client_context={"custom": {"a": 1}, "env": {"stage": "prod"}})
    without = make_destination()

    await _send(with_keys, TRACK)
    await _send(without, TRACK)

    first, second = lambda_server.requests
    assert first.client_context == {"custom": {"a": 1}, "env": {"stage": "prod"}}
    assert "x-amz-client-context" not in second.headers
    assert "x-amz-log-type" not in second.headers


async def test_event_invocation_sends_no_client_context_nor_log_type(
    make_destination: MakeDestination, lambda_server: RecordingLambda
) -> None:
    dest = make_destination(invocation_type="Event", log_type="Tail", client_context={"app": "shop"})

    outcome = await _send(dest, TRACK)

    [rec] = lambda_server.requests
    assert rec.headers["x-amz-invocation-type"] == "Event"
    assert "x-amz-client-context" not in rec.headers
    assert "x-amz-log-type" not in rec.headers
    assert outcome.status_code == 202  # type: ignore[attr-defined]
    assert outcome.category is Category.DELIVERED  # type: ignore[attr-defined]


async def test_track_events_allow_list() -> None:
    dest = AwsLambdaDestination(
        "d", settings(functions={"events": ["Order Completed"]}), external_id="x",
        credential_cache=RoleCredentialCache(),
    )  # fmt: skip
    star = AwsLambdaDestination(
        "d", settings(functions={"events": ["*"]}), external_id="x", credential_cache=RoleCredentialCache()
    )
    assert dest.wants(TRACK)
    assert not dest.wants({**TRACK, "event": "Signed Up"})
    assert dest.wants({"type": "identify", "userId": "u"})
    assert star.wants({**TRACK, "event": "Anything"})
    await dest.close()
    await star.close()


async def test_check_dry_runs_every_function(make_destination: MakeDestination, lambda_server: RecordingLambda) -> None:
    dest = make_destination(functions={"identify": "users-fn"}, client_context={"app": "x"}, log_type="Tail")
    lambda_server.script.append(reply(204))
    lambda_server.script.append(
        reply(404, {"message": "Function not found"}, {"x-amzn-ErrorType": "ResourceNotFoundException"})
    )

    results = await dest.check()

    assert [(fn, o.category) for fn, o in results] == [
        ("my-fn", Category.DELIVERED),
        ("users-fn", Category.CONFIGURATION),
    ]
    assert results[1][1].error_type == "ResourceNotFoundException"
    assert results[0][1].request["invocation_type"] == "DryRun"
    assert {r.headers["x-amz-invocation-type"] for r in lambda_server.requests} == {"DryRun"}
    assert all("x-amz-client-context" not in r.headers for r in lambda_server.requests)


async def test_settings_endpoint_url_overrides_the_environment(
    make_destination: MakeDestination, lambda_server: RecordingLambda, monkeypatch: object
) -> None:
    """endpoint_url applies to STS and Lambda: AssumeRole goes to the overriding endpoint
    (which refuses it), nothing goes to the endpoints of the environment."""
    elsewhere = RecordingLambda()
    await elsewhere.start()
    try:
        elsewhere.default = reply(403, STS_ACCESS_DENIED, {"Content-Type": "text/xml"})
        dest = make_destination(endpoint_url=elsewhere.url)
        outcome = await _send(dest, TRACK)
        assert lambda_server.requests == []
        assert elsewhere.requests and elsewhere.requests[0].body.startswith(b"Action=AssumeRole")
        assert outcome.category is Category.ACCESS_DENIED  # type: ignore[attr-defined]
    finally:
        await elsewhere.stop()
