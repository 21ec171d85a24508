"""The lean Invoke path: one signed POST per event over a pooled aiohttp connection.

The request is what botocore sends for ``lambda.invoke`` (same path encoding, query, headers,
SigV4 signature; tests compare both on the wire), minus the per-call overhead of the full
client (~600 us per call): ``POST {endpoint}/2015-03-31/functions/{FunctionName}/invocations
[?Qualifier=q]`` with ``X-Amz-Invocation-Type``, ``X-Amz-Log-Type`` and ``X-Amz-Client-Context``
(synchronous invokes only), the payload as is and no Content-Type (botocore sends none).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from yarl import URL

from eventrelay import __version__
from eventrelay.destinations.aws_lambda.classify import CONNECTION_FAILED
from eventrelay.destinations.aws_lambda.credentials import SessionCredentials
from eventrelay.destinations.aws_lambda.function_name import FunctionRef
from eventrelay.destinations.aws_lambda.signer import (
    SigV4Signer,
    canonical_path,
    canonical_query,
    host_header,
)
from eventrelay.errors import AwsError

API_VERSION = "2015-03-31"
SAFE_CHARS = "-._~"  # botocore percent_encode: everything else in a path label is encoded
KEEPALIVE_SECONDS = 60.0  # keep idle connections a minute (Lambda's endpoint closes after ~ that)
MAX_ERROR_BODY = 64 * 1024  # enough for any AWS error document; function errors are kept truncated
USER_AGENT = f"eventrelay/{__version__}"


@dataclass(frozen=True, slots=True)
class InvokeTarget:
    """A function's Invoke URL and its canonical SigV4 path and query, computed once."""

    function: str  # FunctionName as given to Invoke (name, partial or full ARN, no qualifier)
    qualifier: str | None
    url: URL
    path: str  # canonical
    query: str  # canonical


@dataclass(frozen=True, slots=True)
class InvokeResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def function_error(self) -> str | None:
        return self.headers.get("X-Amz-Function-Error")

    @property
    def executed_version(self) -> str | None:
        return self.headers.get("X-Amz-Executed-Version")

    @property
    def log_tail(self) -> str | None:
        encoded = self.headers.get("X-Amz-Log-Result")
        if not encoded:
            return None
        try:
            return base64.b64decode(encoded).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return encoded

    def error(self) -> tuple[str | None, str | None]:
        """(AWS error code, message) of an error answer, read as botocore's rest-json parser does."""
        code = self.headers.get("x-amzn-ErrorType")
        message = None
        doc = _json(self.body)
        if doc is not None:
            code = code or doc.get("__type") or doc.get("code") or doc.get("Code")
            message = doc.get("message") or doc.get("Message") or doc.get("errorMessage")
        if code:
            code = str(code).split(":", 1)[0].rsplit("#", 1)[-1]
        return (code or None), (str(message) if message is not None else None)

    def retry_after(self) -> float | None:
        value = self.headers.get("Retry-After")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass  # an HTTP date: rare from AWS; the retry policy decides
        millis = self.headers.get("x-amz-retry-after")
        if millis:
            try:
                return max(0.0, float(millis) / 1000.0)
            except ValueError:
                return None
        return None


class LambdaInvoker:
    """Invokes functions on one Lambda endpoint in one region; one connection pool."""

    def __init__(self, endpoint: str, region: str, *, concurrency: int = 0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.concurrency = concurrency
        self.signer = SigV4Signer("lambda", region)
        self.host = host_header(self.endpoint)
        self._session: aiohttp.ClientSession | None = None
        self._targets: dict[tuple[str, str | None], InvokeTarget] = {}

    def target(self, ref: FunctionRef) -> InvokeTarget:
        key = (ref.function_name, ref.qualifier)
        found = self._targets.get(key)
        if found is None:
            found = self._targets[key] = build_target(self.endpoint, ref.function_name, ref.qualifier)
        return found

    async def invoke(
        self,
        target: InvokeTarget,
        body: bytes,
        creds: SessionCredentials,
        *,
        invocation_type: str,
        log_type: str | None = None,
        client_context: bytes | None = None,
    ) -> InvokeResponse:
        """Send one signed Invoke. Raises ``AwsError(code=CONNECTION_FAILED)`` when no answer
        came (refused, reset, dropped, DNS); the caller bounds the time."""
        headers = {"X-Amz-Invocation-Type": invocation_type}
        if log_type is not None:
            headers["X-Amz-Log-Type"] = log_type
        if client_context is not None:
            headers["X-Amz-Client-Context"] = client_context.decode("ascii")
        headers.update(
            self.signer.sign(
                method="POST",
                host=self.host,
                path=target.path,
                query=target.query,
                headers=headers,
                body=body,
                access_key=creds.access_key,
                secret_key=creds.secret_key,
                token=creds.token,
            )
        )
        session = self._session or self._open()
        try:
            async with session.post(target.url, data=body, headers=headers) as resp:
                data = await resp.read()
                return InvokeResponse(resp.status, resp.headers, data)
        except aiohttp.ClientError as exc:
            raise AwsError(
                f"no answer from {self.endpoint}: {_describe(exc)}", code=CONNECTION_FAILED
            ) from exc
        except OSError as exc:
            raise AwsError(f"no answer from {self.endpoint}: {exc}", code=CONNECTION_FAILED) from exc

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        # aiohttp sets TCP_NODELAY on every connection (base_protocol.connection_made)
        connector = aiohttp.TCPConnector(
            limit=self.concurrency,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ttl_dns_cache=300,  # seconds: AWS endpoints' DNS TTL is short but stable enough
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),  # the attempt timeout bounds each call
            skip_auto_headers=("Content-Type",),  # botocore sends none for the Invoke payload
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )
        return self._session


def build_target(endpoint: str, function_name: str, qualifier: str | None) -> InvokeTarget:
    """The Invoke URL for a function, encoded as botocore encodes it (``:`` -> ``%3A``)."""
    base = URL(endpoint.rstrip("/"), encoded=True)
    name = quote(function_name, safe=SAFE_CHARS)
    wire_path = f"{base.raw_path.rstrip('/')}/{API_VERSION}/functions/{name}/invocations"
    wire_query = f"Qualifier={quote(qualifier, safe=SAFE_CHARS)}" if qualifier else ""
    url = base.with_path(wire_path, encoded=True)
    if wire_query:
        url = url.with_query(None)
        url = URL(f"{url}?{wire_query}", encoded=True)
    return InvokeTarget(
        function=function_name,
        qualifier=qualifier,
        url=url,
        path=canonical_path(wire_path),
        query=canonical_query(wire_query),
    )


def _json(body: bytes) -> dict[str, Any] | None:
    if not body or body[:1] != b"{":
        return None
    try:
        doc = orjson.loads(body[:MAX_ERROR_BODY])
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
