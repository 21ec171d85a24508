"""The SigV4 verifier accepts exactly what botocore signs, for any path, query and body."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from eventrelay.localaws.sigv4 import SignatureError, parse_authorization, verify

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def signed(path: str, query: str, body: bytes, secret: str = SECRET) -> tuple[str, CIMultiDictProxy[str]]:
    url = f"http://127.0.0.1:4566{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method="POST", url=url, data=body, headers={"X-Amz-Invocation-Type": "RequestResponse"})
    SigV4Auth(Credentials("ASIAEXAMPLE", secret, "token"), "lambda", "us-west-2").add_auth(req)
    prepared = req.prepare()
    headers = CIMultiDict(prepared.headers.items())
    headers["Host"] = "127.0.0.1:4566"
    parts = urlsplit(prepared.url)
    raw = parts.path + (f"?{parts.query}" if parts.query else "")
    return raw, CIMultiDictProxy(headers)


names = st.text(alphabet="abcXYZ019-_.:$", min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(name=names, qualifier=st.one_of(st.none(), names), body=st.binary(max_size=200))
def test_botocore_signatures_verify(name: str, qualifier: str | None, body: bytes) -> None:
    path = f"/2015-03-31/functions/{quote(name, safe='')}/invocations"
    query = f"Qualifier={quote(qualifier, safe='-_.~')}" if qualifier else ""
    raw, headers = signed(path, query, body)
    verify(parse_authorization(headers), SECRET, method="POST", raw_path=raw, headers=headers, body=body)


def test_another_secret_body_or_path_does_not_verify() -> None:
    raw, headers = signed("/2015-03-31/functions/echo/invocations", "", b"{}")
    auth = parse_authorization(headers)
    for secret, path, body in (
        ("other", raw, b"{}"),
        (SECRET, raw.replace("echo", "other"), b"{}"),
        (SECRET, raw, b'{"a":1}'),
    ):
        with pytest.raises(SignatureError) as exc:
            verify(auth, secret, method="POST", raw_path=path, headers=headers, body=body)
        assert exc.value.reason == "mismatch"


def test_a_signature_older_than_15_minutes_is_refused() -> None:
    raw, headers = signed("/2015-03-31/functions/echo/invocations", "", b"{}")
    later = datetime.now(UTC).replace(microsecond=0)
    later = later.fromtimestamp(later.timestamp() + 16 * 60, UTC)
    with pytest.raises(SignatureError) as exc:
        verify(
            parse_authorization(headers),
            SECRET,
            method="POST",
            raw_path=raw,
            headers=headers,
            body=b"{}",
            now=later,
        )
    assert exc.value.reason == "skew"
