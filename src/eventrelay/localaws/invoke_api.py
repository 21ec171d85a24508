"""Lambda Invoke over rest-json: ``POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=]``.

Order of checks, as AWS does: authentication (SigV4, issued credentials, expiry), permission
(``lambda:InvokeFunction`` on the function ARN), existence of the function and qualifier, size, content.
Errors carry ``x-amzn-ErrorType`` and a JSON body ``{"Type", "message"}``, which botocore turns into a
``ClientError`` with the right code.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Callable

import orjson
from aiohttp import web

from eventrelay.destinations.aws_lambda.function_name import MAX_QUALIFIER_LENGTH, QUALIFIER_PATTERN
from eventrelay.destinations.aws_lambda.settings import MAX_CLIENT_CONTEXT_BYTES, MAX_PAYLOAD_BYTES
from eventrelay.localaws.auth import Authenticator, Caller, Denied
from eventrelay.localaws.concurrency import RESERVED_REASON, Reservations, throttled
from eventrelay.localaws.functions import FunctionRegistry, Target
from eventrelay.localaws.iam import Role
from eventrelay.localaws.invocation import Invocation, Result
from eventrelay.localaws.pool import Echo, Pool, RuntimeHost

MAX_READ_BYTES = 64 * 1024 * 1024  # larger bodies are refused without reading them
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
MAX_QUEUED_PER_VERSION = 1000  # invocations waiting for a free worker; beyond, 429 as AWS throttles
THROTTLE_RETRY_AFTER = 1.0  # seconds, in Retry-After of the 429 answered when the wait queue is full

DENIED = {  # authentication failure -> (HTTP status, Lambda error code)
    "missing": (403, "MissingAuthenticationTokenException"),
    "malformed": (403, "InvalidSignatureException"),
    "unknown_key": (403, "UnrecognizedClientException"),
    "bad_signature": (403, "InvalidSignatureException"),
    "skew": (403, "InvalidSignatureException"),
    "expired": (403, "ExpiredTokenException"),
}


class LambdaApi:
    def __init__(
        self,
        registry: FunctionRegistry,
        auth: Authenticator,
        host: RuntimeHost,
        *,
        allow_base_credentials: bool = False,
        echo: Echo | None = None,
    ) -> None:
        self.registry = registry
        self.auth = auth
        self.host = host
        self.allow_base_credentials = allow_base_credentials
        self.echo = echo
        self.pools: dict[tuple[str, str], Pool] = {}
        self.reservations = Reservations()  # invocations in flight per function (reserved concurrency)
        self._background: set[asyncio.Future[Result]] = set()

    def set_echo(self, echo: Echo | None) -> None:
        """Where handlers' output is copied (None: nowhere), for every function from now on."""
        self.echo = echo
        for pool in self.pools.values():
            pool.echo = echo

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self.pools.values()))

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            return error(
                400,
                "InvalidParameterValueException",
                f"Unsupported invocation type {invocation_type!r}: use RequestResponse, Event or DryRun",
            )
        if (request.content_length or 0) > MAX_READ_BYTES:
            return _too_large(invocation_type)
        body = await request.read()
        caller = authenticate(self.auth, request, body)
        if isinstance(caller, web.Response):
            return caller
        resolved = self._resolve(request)
        if isinstance(resolved, web.StreamResponse):
            return resolved
        name, qualifier = resolved
        resource = self.registry.arn(name, qualifier)
        refused = authorize(
            caller, "lambda:InvokeFunction", Role.may_invoke, resource, name, self.allow_base_credentials
        )
        if refused is not None:
            return refused
        target = self.registry.lookup(self.registry.parse(request.match_info["function_name"]), qualifier)
        if target is None:
            return error(404, "ResourceNotFoundException", f"Function not found: {resource}")
        if len(body) > _payload_limit(invocation_type):
            return _too_large(invocation_type, len(body))
        if invocation_type == "DryRun":
            return web.Response(status=204, headers=_headers(str(uuid.uuid4()), target))
        payload = body if body.strip() else b"{}"
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return error(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: Could not parse payload into json: {exc}",
            )
        client_context: str | None = None
        if invocation_type == "RequestResponse":  # AWS passes the client context to sync invokes only
            decoded = _client_context(request.headers.get("X-Amz-Client-Context"))
            if isinstance(decoded, web.StreamResponse):
                return decoded
            client_context = decoded
        pool = self._pool(target)
        if len(pool.queue) >= MAX_QUEUED_PER_VERSION:
            return throttled(RESERVED_REASON, THROTTLE_RETRY_AFTER)
        inv = Invocation(target, payload, client_context)
        if not self.reservations.admit(target.spec, inv.future, refusable=invocation_type == "RequestResponse"):
            return throttled(RESERVED_REASON, target.spec.throttle_retry_after)
        pool.submit(inv)
        if invocation_type == "Event":
            self._background.add(inv.future)  # runs on; its output still reaches the echo
            inv.future.add_done_callback(self._background.discard)
            return web.Response(status=202, headers=_headers(inv.request_id, target))
        result = await asyncio.shield(inv.future)
        headers = _headers(inv.request_id, target)
        headers["Content-Type"] = result.content_type
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(result.log_tail()).decode()
        return web.Response(status=200, body=result.body, headers=headers)

    def _resolve(self, request: web.Request) -> tuple[str, str | None] | web.StreamResponse:
        raw_name = request.match_info["function_name"]
        try:
            ref = self.registry.parse(raw_name)
        except ValueError:
            return error(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{raw_name}' at 'functionName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:"
                "lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)"
                "(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
            )
        query_qualifier = request.query.get("Qualifier")
        if query_qualifier is not None and (
            not QUALIFIER_PATTERN.fullmatch(query_qualifier) or len(query_qualifier) > MAX_QUALIFIER_LENGTH
        ):
            return error(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{query_qualifier}' at 'qualifier' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern: "
                "(|[a-zA-Z0-9$_-]+)",
            )
        if ref.qualifier and query_qualifier and ref.qualifier != query_qualifier:
            return error(
                400,
                "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified qualifier.",
            )
        return ref.name, ref.qualifier or query_qualifier

    def _pool(self, target: Target) -> Pool:
        key = (target.spec.name, target.version)
        pool = self.pools.get(key)
        if pool is None:
            pool = Pool(target.spec, target.version, self.registry.region, self.host, self.echo)
            self.pools[key] = pool
        return pool


def _client_context(header: str | None) -> str | web.StreamResponse | None:
    if not header:
        return None
    if len(header) > MAX_CLIENT_CONTEXT_BYTES:
        return error(
            400,
            "InvalidParameterValueException",
            f"Client context must be at most {MAX_CLIENT_CONTEXT_BYTES} bytes (base64), got {len(header)}",
        )
    try:
        context = orjson.loads(base64.b64decode(header, validate=True))
        if not isinstance(context, dict):
            raise ValueError("not an object")
    except (binascii.Error, ValueError) as exc:
        return error(
            400,
            "InvalidRequestContentException",
            f"Client context must be a valid Base64-encoded JSON object: {exc}",
        )
    return orjson.dumps(context).decode()  # one line: it travels in a header to the runtime


def _headers(request_id: str, target: Target) -> dict[str, str]:
    return {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": target.version}


def _payload_limit(invocation_type: str) -> int:
    """AWS's Invoke payload limit (the one eventrelay's settings check ``batch.max_bytes`` against);
    a DryRun is held to the synchronous one."""
    return MAX_PAYLOAD_BYTES.get(invocation_type, MAX_PAYLOAD_BYTES["RequestResponse"])


def _too_large(invocation_type: str, size: int | None = None) -> web.Response:
    limit = _payload_limit(invocation_type)
    shown = f" (got {size} bytes)" if size is not None else ""
    return error(
        413,
        "RequestEntityTooLargeException",
        f"Request must be smaller than {limit} bytes for the InvokeFunction operation{shown}",
    )


def authenticate(auth: Authenticator, request: web.Request, body: bytes) -> Caller | web.Response:
    """The signed caller of ``request``, or the error Lambda answers when the signature fails."""
    try:
        return auth.authenticate(request.method, request.raw_path, request.headers, body)
    except Denied as exc:
        status, code = DENIED[exc.kind]
        return error(status, code, exc.message)


def authorize(
    caller: Caller,
    action: str,
    may: Callable[[Role, str, str], bool],
    resource: str,
    name: str,
    allow_base_credentials: bool,
) -> web.Response | None:
    """None when ``caller`` may do ``action`` on the function ``resource`` (``name``): its role
    session's ``may``, or ``allow_base_credentials`` for base keys; else Lambda's AccessDenied."""
    allowed = allow_base_credentials if caller.session is None else may(caller.session.role, resource, name)
    if allowed:
        return None
    return error(
        403,
        "AccessDeniedException",
        f"User: {caller.arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action",
    )


def error(status: int, code: str, message: str, kind: str = "User") -> web.Response:
    return web.json_response(
        {"Type": kind, "message": message},
        status=status,
        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


async def unknown_operation(request: web.Request) -> web.Response:
    return error(404, "UnknownOperationException", f"Unknown operation: {request.method} {request.path}")
