"""The ``aws_lambda`` Destination: pick the function, assume the role, invoke, classify.

One instance per configured destination. ``send`` never raises for a delivery failure: every
attempt ends as an ``Outcome`` whose ``request`` says what was asked ("Request to destination":
function, qualifier, invocation and log type, client context, region, role) and never carries
credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError
from botocore.httpsession import where as default_ca_bundle

from eventrelay.core.errors import AwsError
from eventrelay.core.external_id import external_id as external_id_for
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.core.spec import CALL_TYPES
from eventrelay.destinations.aws_lambda import endpoints
from eventrelay.destinations.aws_lambda.classify import TIMED_OUT, classify
from eventrelay.destinations.aws_lambda.concurrency import read_answer
from eventrelay.destinations.aws_lambda.credentials import CACHE, AssumeRequest, RoleCredentialCache
from eventrelay.destinations.aws_lambda.function_name import FunctionRef, parse_function_name
from eventrelay.destinations.aws_lambda.invoke import InvokeResponse, LambdaInvoker
from eventrelay.destinations.aws_lambda.settings import AwsLambdaSettings, client_context_payload, encode_client_context
from eventrelay.destinations.base import SendRequest
from eventrelay.destinations.http_client import HttpTransport, proxy_from_environment

MAX_RESPONSE_BODY = 4096  # bytes of the function's answer kept with the attempt ("Response from destination")
DRY_RUN_PAYLOAD = b"{}"
SETUP_FAILED = "ClientSetupFailed"  # botocore could not build a client (profile, endpoint): retried
NO_EXTERNAL_ID = "MissingExternalId"  # no workspace id and the caller did not say the source

log = logging.getLogger("eventrelay.aws_lambda")


class AwsLambdaDestination:
    """Delivers events to AWS Lambda (DESIGN.md sections 4 and 5)."""

    def __init__(
        self,
        name: str,
        settings: AwsLambdaSettings,
        *,
        external_id: str | None,
        concurrency: int = 0,
        botocore_session: Any = None,
        credential_cache: RoleCredentialCache = CACHE,
        transport: HttpTransport | None = None,
    ) -> None:
        """``external_id`` is the workspace id; None means the source of each event (the
        request's ``source``). ``concurrency`` caps open connections (0: the engine's limit bounds
        them). ``transport`` carries the Invoke requests (default: eventrelay's HTTP client for the
        resolved endpoint, with the CA bundle and proxy botocore would use); the caller closes a
        given one."""
        self.name = name
        self.settings = settings
        self.external_id = external_id
        self.concurrency = concurrency
        self._botocore_session = botocore_session
        self._cache = credential_cache
        self._transport = transport
        self._default = parse_function_name(settings.lambda_)
        self._refs: dict[str, FunctionRef] = {t: settings.function_for(t) for t in CALL_TYPES}
        events = settings.functions.events
        self._events = None if events is None or "*" in events else frozenset(events)
        sync = settings.invocation_type == "RequestResponse"
        self._log_type = "Tail" if sync and settings.log_type == "Tail" else None
        self._client_context = encode_client_context(settings.client_context) if sync else None
        self._requests: dict[str, dict[str, Any]] = {}
        self._invoker: LambdaInvoker | None = None
        self._sts_endpoint = ""
        self._ready_lock = asyncio.Lock()
        self._closed = False
        self._reserved: dict[str, int | None] = {}  # function -> reserved concurrency, once final

    # -- Destination protocol -------------------------------------------------------------------
    def wants(self, event: Mapping[str, Any]) -> bool:
        if self._events is not None and event.get("type") == "track":
            return event.get("event") in self._events
        return True

    async def send(self, request: SendRequest, timeout: float) -> Outcome:  # noqa: ASYNC109 (the Destination protocol)
        outcome, _ = await self._timed(self.function_of(request.event), request.body, request.source, timeout)
        return outcome

    # -- TargetedDestination: flow control per function ------------------------------------------
    def target(self, event: Mapping[str, Any]) -> str:
        return self.function_of(event).function_name

    def targets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ref.function_name for ref in self.settings.all_functions()))

    async def reserved_concurrency(self, target: str, timeout: float) -> int | None:  # noqa: ASYNC109
        """``GetFunctionConcurrency`` with the destination's role; a final answer (a value, none,
        or a refusal) is kept, anything else is asked again at the next call."""
        if target in self._reserved:
            return self._reserved[target]
        role_external_id = external_id_for(self.external_id, None)
        if role_external_id is None:  # no workspace id: the role is assumed per source, none here
            return None
        try:
            async with asyncio.timeout(timeout):
                invoker = self._invoker or await self._ready()
                creds = await self._cache.get(self._session(), self._assume_request(role_external_id))
                resp = await invoker.get_function_concurrency(target, creds)
        except (TimeoutError, AwsError) as exc:
            log.debug("destination %s: reserved concurrency of %s unknown: %s", self.name, target, exc)
            return None
        answer = read_answer(resp, self.name, target)
        if answer.final:
            self._reserved[target] = answer.value
        return answer.value

    async def close(self) -> None:
        self._closed = True
        invoker, self._invoker = self._invoker, None
        if invoker is not None:
            await invoker.close()

    # -- connection check -----------------------------------------------------------------------
    async def check(
        self,
        *,
        source: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[tuple[str, Outcome]]:
        """Assume the role and make a ``DryRun`` invoke of every function this destination uses
        (204 means the role may invoke it). Returns (function as configured, outcome) pairs."""
        results = []
        for ref in self.settings.all_functions():
            outcome, _ = await self._timed(ref, DRY_RUN_PAYLOAD, source, timeout, invocation_type="DryRun")
            outcome.request.update(invocation_type="DryRun", log_type="None", client_context=None)
            results.append((ref.raw, outcome))
        return results

    # -- internals ------------------------------------------------------------------------------
    def function_of(self, event: Mapping[str, Any]) -> FunctionRef:
        """The function ``event`` goes to (its call type's override, else ``lambda``)."""
        return self._refs.get(str(event.get("type")), self._default)

    async def _timed(
        self,
        ref: FunctionRef,
        body: bytes,
        source: str | None,
        timeout: float,  # noqa: ASYNC109
        *,
        invocation_type: str | None = None,
    ) -> tuple[Outcome, InvokeResponse | None]:
        """One invoke of ``ref`` with ``body`` bounded by ``timeout``, measured: its outcome and
        the answer (None when none came). ``invocation_type`` defaults to the settings' one."""
        started = time.perf_counter()
        answer: InvokeResponse | None = None
        try:
            async with asyncio.timeout(timeout):
                kind = invocation_type or self.settings.invocation_type
                outcome, answer = await self._invoke(ref, body, source, kind)
        except TimeoutError:
            outcome = self._failure(ref, TIMED_OUT, f"no answer within {timeout:g} s")
        except Exception as exc:  # a bug must not kill the worker; the attempt is retried
            log.exception("destination %s: unexpected error", self.name)
            outcome = self._failure(ref, "InternalError", f"eventrelay internal error: {type(exc).__name__}")
        outcome.latency_ms = (time.perf_counter() - started) * 1000.0
        return outcome, answer

    async def _invoke(
        self, ref: FunctionRef, body: bytes, source: str | None, invocation_type: str
    ) -> tuple[Outcome, InvokeResponse | None]:
        role_external_id = external_id_for(self.external_id, source)
        if role_external_id is None:
            failure = self._failure(
                ref, NO_EXTERNAL_ID, "no External ID: configure workspace.id (or pass the event's source)"
            )
            return failure, None
        try:
            invoker = self._invoker or await self._ready()
            session = self._session()
            req = self._assume_request(role_external_id)
            sync = invocation_type == "RequestResponse"
            target = invoker.target(ref)
            for first_try in (True, False):
                creds = await self._cache.get(session, req)
                resp = await invoker.invoke(
                    target,
                    body,
                    creds,
                    invocation_type=invocation_type,
                    log_type=self._log_type if sync else None,
                    client_context=self._client_context if sync else None,
                )
                outcome = self._outcome(ref, resp)
                if outcome.category is not Category.INVALID_CREDENTIALS or not first_try:
                    return outcome, resp
                # the session token was refused (expired, revoked): re-assume once
                log.info("destination %s: session refused (%s), re-assuming", self.name, outcome.error_type)
                self._cache.invalidate(session, req, refused=creds)
            raise AssertionError("unreachable")
        except AwsError as exc:
            return self._failure(ref, exc.code, str(exc), status=exc.status), None

    async def _ready(self) -> LambdaInvoker:
        async with self._ready_lock:
            if self._invoker is None:
                if self._closed:
                    raise AwsError("destination is closed", code="DestinationClosed")
                try:
                    found = await asyncio.to_thread(
                        endpoints.resolve_endpoints,
                        self._session(),
                        self.settings.region,
                        self.settings.endpoint_url,
                    )
                    invoker = LambdaInvoker(
                        found.lambda_,
                        self.settings.region,
                        concurrency=self.concurrency,
                        # AWS_CA_BUNDLE / the profile's ca_bundle, as the AWS CLI and SDKs honour it
                        ca_bundle=self._session().get_config_variable("ca_bundle") or default_ca_bundle(),
                        proxy=proxy_from_environment(found.lambda_),  # HTTPS_PROXY / NO_PROXY, as botocore
                        transport=self._transport,
                    )
                except (BotoCoreError, ValueError) as exc:  # a missing profile, a malformed endpoint or proxy
                    raise AwsError(f"cannot set up the AWS clients: {exc}", code=SETUP_FAILED) from exc
                self._sts_endpoint = found.sts
                self._invoker = invoker
            return self._invoker

    def _assume_request(self, external_id: str) -> AssumeRequest:
        """The AssumeRole of this destination's role with ``external_id`` (after ``_ready``: the
        STS endpoint is resolved)."""
        return AssumeRequest(
            role_arn=self.settings.role_address,
            external_id=external_id,
            session_name=self.settings.role_session_name,
            region=self.settings.region,
            sts_endpoint=self._sts_endpoint,
        )

    def _session(self) -> Any:
        if self._botocore_session is None:
            self._botocore_session = endpoints.default_session()
        return self._botocore_session

    def _outcome(self, ref: FunctionRef, resp: InvokeResponse) -> Outcome:
        function_error = resp.function_error
        code, message = resp.error() if resp.status >= 300 else (None, None)
        category, verdict = classify(resp.status, code, function_error)
        outcome = self._base(ref, category, verdict)
        outcome.status_code = resp.status
        outcome.executed_version = resp.executed_version
        outcome.log_tail = resp.log_tail
        outcome.response_body = _truncate(resp.body)
        if function_error:
            doc = _error_document(resp)
            outcome.error_type = str(doc.get("errorType") or function_error)
            outcome.error_message = str(doc.get("errorMessage") or f"the function raised ({function_error})")
        elif code or resp.status >= 300:
            outcome.error_type = code or f"HTTP{resp.status}"
            outcome.error_message = message or f"HTTP {resp.status} from Lambda"
        if category is Category.THROTTLED:
            outcome.retry_after = resp.retry_after()
        return outcome

    def _failure(self, ref: FunctionRef, code: str | None, message: str, *, status: int | None = None) -> Outcome:
        category, verdict = classify(status, code)
        if code == NO_EXTERNAL_ID:
            category, verdict = classify(400, "InvalidParameterValueException")
        outcome = self._base(ref, category, verdict)
        outcome.status_code = status
        outcome.error_type = code
        outcome.error_message = message
        return outcome

    def _base(self, ref: FunctionRef, category: Category, verdict: Verdict) -> Outcome:
        request = self._requests.get(ref.raw)
        if request is None:
            request = self._requests[ref.raw] = {
                "function": ref.function_name,
                "qualifier": ref.qualifier,
                "invocation_type": self.settings.invocation_type,
                "log_type": self._log_type or "None",
                "client_context": client_context_payload(self.settings.client_context)
                if self._client_context
                else None,
                "region": self.settings.region,
                "role": self.settings.role_address,
            }
        return Outcome(
            category=category,
            verdict=verdict,
            function=ref.function_name,
            qualifier=ref.qualifier,
            request=dict(request),
        )


def _truncate(body: bytes) -> str | None:
    if not body:
        return None
    text = body[:MAX_RESPONSE_BODY].decode("utf-8", errors="replace")
    return text + "..." if len(body) > MAX_RESPONSE_BODY else text


def _error_document(resp: InvokeResponse) -> dict[str, Any]:
    try:
        doc = orjson.loads(resp.body) if resp.body[:1] == b"{" else None
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
