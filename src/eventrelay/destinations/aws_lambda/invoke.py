"""The lean Invoke path: one signed POST per event over a pooled keep-alive connection.

The request is what botocore sends for ``lambda.invoke`` (same path encoding, query, headers,
SigV4 signature; tests compare both on the wire), minus the per-call overhead of the full
client (~600 us per call) and of a general HTTP client (aiohttp: ~270 us; ours, see
``destinations/http_client/``: ~30 us): ``POST {endpoint}/2015-03-31/functions/{FunctionName}/invocations
[?Qualifier=q]`` with ``X-Amz-Invocation-Type``, ``X-Amz-Log-Type`` and ``X-Amz-Client-Context``
(synchronous invokes only), the payload as is and no Content-Type (botocore sends none).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from yarl import URL

from eventrelay import __version__
from eventrelay.core.errors import AwsError, TransportError
from eventrelay.destinations.aws_lambda.classify import CONNECTION_FAILED
from eventrelay.destinations.aws_lambda.credentials import SessionCredentials
from eventrelay.destinations.aws_lambda.function_name import FunctionRef
from eventrelay.destinations.aws_lambda.signer import (
    SigV4Signer,
    canonical_path,
    canonical_query,
)
from eventrelay.destinations.http_client import (
    HttpClient,
    HttpRequest,
    HttpTransport,
    Proxy,
    header_value,
    host_header,
    origin_of,
)

API_VERSION = "2015-03-31"
CONCURRENCY_API_VERSION = "2019-09-30"  # GetFunctionConcurrency's path version
SAFE_CHARS = "-._~"  # botocore percent_encode: everything else in a path label is encoded
MAX_ERROR_BODY = 64 * 1024  # enough for any AWS error document; function errors are kept truncated
USER_AGENT = f"eventrelay/{__version__}"


@dataclass(frozen=True, slots=True)
class InvokeTarget:
    """A function's Invoke URL and its canonical SigV4 path and query, computed once."""

    function: str  # FunctionName as given to Invoke (name, partial or full ARN, no qualifier)
    qualifier: str | None
    url: URL
    wire: str  # path and query as sent on the request line
    path: str  # canonical
    query: str  # canonical


@dataclass(frozen=True, slots=True)
class InvokeResponse:
    status: int
    headers: dict[bytes, bytes]  # raw, names in lower case
    body: bytes

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    @property
    def function_error(self) -> str | None:
        return self.header("x-amz-function-error")

    @property
    def executed_version(self) -> str | None:
        return self.header("x-amz-executed-version")

    @property
    def log_tail(self) -> str | None:
        encoded = self.header("x-amz-log-result")
        if not encoded:
            return None
        try:
            return base64.b64decode(encoded).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return encoded

    def error(self) -> tuple[str | None, str | None]:
        """(AWS error code, message) of an error answer, read as botocore's rest-json parser does."""
        code = self.header("x-amzn-errortype")
        message = None
        doc = _json(self.body)
        if doc is not None:
            code = code or doc.get("__type") or doc.get("code") or doc.get("Code")
            message = doc.get("message") or doc.get("Message") or doc.get("errorMessage")
        if code:
            code = str(code).split(":", 1)[0].rsplit("#", 1)[-1]
        return (code or None), (str(message) if message is not None else None)

    def retry_after(self) -> float | None:
        value = self.header("retry-after")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass  # an HTTP date: rare from AWS; the retry policy decides
        millis = self.header("x-amz-retry-after")
        if millis:
            try:
                return max(0.0, float(millis) / 1000.0)
            except ValueError:
                return None
        return None


class LambdaInvoker:
    """Invokes functions on one Lambda endpoint in one region over one ``HttpTransport``.

    The default transport is eventrelay's ``HttpClient`` for the endpoint: ``concurrency``
    connections at most (0: no limit), verified against ``ca_bundle``, through ``proxy`` (None:
    direct); the invoker closes it. A given ``transport`` is used as is (those three do not
    apply) and stays its owner's to close.
    """

    def __init__(
        self,
        endpoint: str,
        region: str,
        *,
        concurrency: int = 0,
        ca_bundle: str | None = None,
        proxy: Proxy | None = None,
        transport: HttpTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.concurrency = concurrency
        self.signer = SigV4Signer("lambda", region)
        self.host = host_header(self.endpoint)
        self.origin = origin_of(self.endpoint)
        self._own: HttpClient | None = None
        if transport is None:
            transport = self._own = HttpClient(
                self.endpoint, max_connections=concurrency, user_agent=USER_AGENT, ca_bundle=ca_bundle, proxy=proxy
            )
        self._transport = transport
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
        return await self._signed("POST", target.wire, target.path, target.query, headers, body, creds)

    async def get_function_concurrency(self, function: str, creds: SessionCredentials) -> InvokeResponse:
        """``GetFunctionConcurrency`` of ``function`` (name or ARN, no qualifier: reserved
        concurrency belongs to the function): ``GET /2019-09-30/functions/{name}/concurrency``,
        signed like the invokes. Raises ``AwsError(code=CONNECTION_FAILED)`` when no answer came."""
        wire = f"/{CONCURRENCY_API_VERSION}/functions/{quote(function, safe=SAFE_CHARS)}/concurrency"
        base = URL(self.endpoint, encoded=True).raw_path.rstrip("/")
        wire = f"{base}{wire}"
        return await self._signed("GET", wire, canonical_path(wire), "", {}, b"", creds)

    async def _signed(
        self,
        method: str,
        wire: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        creds: SessionCredentials,
    ) -> InvokeResponse:
        """``headers`` (updated in place) signed with ``creds`` and sent to ``wire`` (``path`` and
        ``query`` canonical). Raises ``AwsError(code=CONNECTION_FAILED)`` when no answer came."""
        headers.update(
            self.signer.sign(
                method=method,
                host=self.host,
                path=path,
                query=query,
                headers=headers,
                body=body,
                access_key=creds.access_key,
                secret_key=creds.secret_key,
                token=creds.token,
            )
        )
        try:
            resp = await self._transport.handle(HttpRequest(method, self.origin, wire, headers, body))
        except TransportError as exc:
            raise AwsError(f"no answer from {self.endpoint}: {exc}", code=CONNECTION_FAILED) from exc
        return InvokeResponse(resp.status, resp.headers, resp.body)

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()


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
        wire=f"{wire_path}?{wire_query}" if wire_query else wire_path,
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
