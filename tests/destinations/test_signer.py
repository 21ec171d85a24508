"""The cached-key SigV4 signer produces byte-identical Authorization headers to botocore's SigV4Auth."""

from __future__ import annotations

import datetime
import string
from unittest import mock

import botocore.auth
import botocore.credentials
from botocore.awsrequest import AWSRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrelay.destinations.aws_lambda.invoke import build_target
from eventrelay.destinations.aws_lambda.signer import SigV4Signer
from eventrelay.destinations.http_client import host_header

STAMP = "20261126T103425Z"


def botocore_sign(
    url: str, headers: dict[str, str], body: bytes, creds: tuple[str, str, str | None], region: str
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, headers=dict(headers), data=body)
    when = datetime.datetime.strptime(STAMP, "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(*creds), "lambda", region).add_auth(request)
    return {k: str(v) for k, v in request.headers.items()}


def ours(
    endpoint: str,
    function: str,
    qualifier: str | None,
    headers: dict[str, str],
    body: bytes,
    creds: tuple[str, str, str | None],
    region: str,
) -> tuple[str, dict[str, str]]:
    target = build_target(endpoint, function, qualifier)
    added = SigV4Signer("lambda", region).sign(
        method="POST",
        host=host_header(endpoint),
        path=target.path,
        query=target.query,
        headers=headers,
        body=body,
        access_key=creds[0],
        secret_key=creds[1],
        token=creds[2],
        timestamp=STAMP,
    )
    return str(target.url), added


CASES = [
    ("https://lambda.us-west-2.amazonaws.com", "my-fn", None),
    ("https://lambda.us-west-2.amazonaws.com", "my-fn", "live"),
    ("https://lambda.us-west-2.amazonaws.com", "my-fn", "$LATEST"),
    ("https://lambda.us-west-2.amazonaws.com", "arn:aws:lambda:us-west-2:123456789012:function:my-fn", "7"),
    ("http://127.0.0.1:9001", "123456789012:function:my_fn.v2", None),
    (
        "http://localhost:80",
        "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:x",
        "$LATEST.PUBLISHED",
    ),
    ("http://[::1]:4566", "fn-with-dashes_and_underscores", "prod-2"),
    ("https://vpce-1.lambda.eu-central-1.vpce.amazonaws.com:8443/prefix", "f", "a_b"),
]


def test_authorization_is_byte_identical_to_botocore_for_invoke_requests() -> None:
    creds = ("ASIAEXAMPLEEXAMPLE01", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzE//token+/=")
    headers = {
        "X-Amz-Invocation-Type": "RequestResponse",
        "X-Amz-Log-Type": "Tail",
        "X-Amz-Client-Context": "eyJjdXN0b20iOnsiYXBwIjoic2hvcCJ9fQ==",
    }
    for endpoint, function, qualifier in CASES:
        url, added = ours(endpoint, function, qualifier, headers, b'{"type":"track"}', creds, "us-west-2")
        expected = botocore_sign(url, headers, b'{"type":"track"}', creds, "us-west-2")
        assert added["Authorization"] == expected["Authorization"], (endpoint, function, qualifier)
        assert added["X-Amz-Date"] == expected["X-Amz-Date"]
        assert added["X-Amz-Security-Token"] == expected["X-Amz-Security-Token"]


def test_path_encodes_arn_colons_as_botocore_does() -> None:
    target = build_target(
        "https://lambda.us-west-2.amazonaws.com",
        "arn:aws:lambda:us-west-2:123456789012:function:f",
        "$LATEST",
    )
    assert str(target.url) == (
        "https://lambda.us-west-2.amazonaws.com/2015-03-31/functions/"
        "arn%3Aaws%3Alambda%3Aus-west-2%3A123456789012%3Afunction%3Af/invocations?Qualifier=%24LATEST"
    )


def test_without_session_token_no_security_token_header_is_signed() -> None:
    creds = ("AKIDEXAMPLE", "secret", None)
    url, added = ours("https://lambda.us-east-1.amazonaws.com", "f", None, {}, b"", creds, "us-east-1")
    expected = botocore_sign(url, {}, b"", creds, "us-east-1")
    assert "X-Amz-Security-Token" not in added
    assert added["Authorization"] == expected["Authorization"]


def test_signing_key_is_cached_per_secret_and_day() -> None:
    signer = SigV4Signer("lambda", "us-west-2")
    for secret in ("a", "b", "a"):
        signer.sign(
            method="POST", host="h", path="/", query="", headers={}, body=b"",
            access_key="k", secret_key=secret, token=None, timestamp=STAMP,
        )  # fmt: skip
    assert len(signer._keys) == 2


NAME = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=64).filter(
    lambda s: s not in (".", "..")
)
QUALIFIER = st.one_of(
    st.none(),
    st.sampled_from(["$LATEST", "$LATEST.PUBLISHED"]),
    st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=128),
)
FUNCTION = st.one_of(
    NAME,
    st.builds(lambda n: f"123456789012:function:{n}", NAME),
    st.builds(
        lambda r, n: f"arn:aws:lambda:{r}:123456789012:function:{n}",
        st.sampled_from(["us-west-2", "eu-west-1"]),
        NAME,
    ),
)
HEADER_VALUE = st.text(string.ascii_letters + string.digits + " +/=-_.:", min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    function=FUNCTION,
    qualifier=QUALIFIER,
    body=st.binary(max_size=300),
    invocation=st.sampled_from(["RequestResponse", "Event", "DryRun"]),
    context=st.one_of(st.none(), HEADER_VALUE),
    secret=st.text(string.ascii_letters + string.digits + "/+", min_size=1, max_size=40),
    token=st.one_of(st.none(), st.text(string.ascii_letters + string.digits + "/+=", min_size=1, max_size=60)),
    region=st.sampled_from(["us-west-2", "eu-central-1", "ap-southeast-2", "us-gov-west-1"]),
    endpoint=st.sampled_from(["https://lambda.us-west-2.amazonaws.com", "http://127.0.0.1:8088", "http://h:80"]),
)
def test_generated_requests_sign_identically_to_botocore(
    function: str,
    qualifier: str | None,
    body: bytes,
    invocation: str,
    context: str | None,
    secret: str,
    token: str | None,
    region: str,
    endpoint: str,
) -> None:
    headers = {"X-Amz-Invocation-Type": invocation}
    if context is not None:
        headers["X-Amz-Client-Context"] = context
    creds = ("ASIAGENERATED0000001", secret, token)
    url, added = ours(endpoint, function, qualifier, headers, body, creds, region)
    assert added["Authorization"] == botocore_sign(url, headers, body, creds, region)["Authorization"]


def test_wire_request_matches_what_botocore_lambda_client_sends() -> None:
    """The path/query our target builds is the URL botocore's own lambda client produces."""
    import botocore.session
    from botocore.awsrequest import AWSResponse

    seen: list[str] = []

    def capture(request: AWSRequest, **_: object) -> AWSResponse:
        seen.append(request.url)
        return AWSResponse(request.url, 200, {}, None)

    client = botocore.session.Session().create_client(
        "lambda", region_name="us-west-2", aws_access_key_id="a", aws_secret_access_key="b",
        endpoint_url="http://127.0.0.1:9",
    )  # fmt: skip
    client.meta.events.register("before-send", capture)
    for function, qualifier in [
        ("my-fn", None),
        ("arn:aws:lambda:us-west-2:123456789012:function:f", "$LATEST"),
    ]:
        kwargs = {"Qualifier": qualifier} if qualifier else {}
        client.invoke(FunctionName=function, Payload=b"{}", **kwargs)
        assert seen[-1] == str(build_target("http://127.0.0.1:9", function, qualifier).url)
    client.close()
