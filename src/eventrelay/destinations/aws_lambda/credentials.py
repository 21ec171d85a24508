"""STS AssumeRole with the External ID, and the process-wide cache of session credentials.

Base credentials come from botocore's standard chain (environment, profiles, container and
instance roles). eventrelay assumes ``role_address`` with ``ExternalId`` = the workspace id and
keeps the session credentials until ``REFRESH_MARGIN`` before they expire. The cache is shared
by every destination and worker of the process, keyed by (role, External ID, STS endpoint,
base access key); concurrent callers for one key wait for a single AssumeRole call.

botocore errors are wrapped into ``AwsError`` carrying the AWS error code (``AccessDenied``,
``InvalidClientTokenId``, ``SignatureDoesNotMatch``, ``ExpiredToken``, ``RequestExpired``...).
Secret keys and session tokens never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from eventrelay.core.errors import AwsError
from eventrelay.destinations.aws_lambda import endpoints
from eventrelay.destinations.aws_lambda.classify import (
    BAD_ANSWER,
    CONNECTION_FAILED,
    NO_CREDENTIALS,
    TIMED_OUT,
)

SESSION_DURATION = 3600  # seconds asked of STS (its default; roles allow at least this much)
REFRESH_MARGIN = 300.0  # refresh 5 minutes before expiry so no attempt signs with a dying token

log = logging.getLogger("eventrelay.aws_lambda")


@dataclass(frozen=True, slots=True)
class SessionCredentials:
    """Temporary credentials of an assumed role. The secret parts are left out of ``repr``."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(repr=False)
    expires_at: float  # epoch seconds
    role_arn: str

    def fresh(self, now: float) -> bool:
        return now < self.expires_at - REFRESH_MARGIN


@dataclass(frozen=True, slots=True)
class AssumeRequest:
    role_arn: str
    external_id: str
    session_name: str
    region: str
    sts_endpoint: str


CacheKey = tuple[str, str, str, str]  # role ARN, External ID, STS endpoint, base access key
_Lookup = tuple[str, str, str, int]  # role ARN, External ID, STS endpoint, id(botocore session)


class RoleCredentialCache:
    """Session credentials per role, shared by all destinations of the process."""

    def __init__(self) -> None:
        self._sessions: dict[CacheKey, SessionCredentials] = {}
        self._latest: dict[_Lookup, CacheKey] = {}
        self._inflight: dict[_Lookup, asyncio.Task[SessionCredentials]] = {}
        self._calls: dict[CacheKey, asyncio.Task[SessionCredentials]] = {}
        self.assume_calls = 0  # AssumeRole calls made (for tests and /metrics)

    async def get(self, session: Any, req: AssumeRequest) -> SessionCredentials:
        """Fresh session credentials for ``req``, assuming the role at most once at a time."""
        lookup = (req.role_arn, req.external_id, req.sts_endpoint, id(session))
        key = self._latest.get(lookup)
        found = self._sessions.get(key) if key else None
        if found is not None and found.fresh(time.time()):
            return found
        loop = asyncio.get_running_loop()
        task = self._inflight.get(lookup)
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._assume(session, req, lookup))
            self._inflight[lookup] = task
            task.add_done_callback(lambda t: self._finished(self._inflight, lookup, t))
        # shield: a caller's timeout must not cancel the call the other callers wait for
        return await asyncio.shield(task)

    def invalidate(self, session: Any, req: AssumeRequest, refused: SessionCredentials | None = None) -> None:
        """Forget the session of ``req`` (its token was refused): the next ``get`` re-assumes.
        With ``refused``, only when that is still the cached session (another caller may have
        re-assumed already)."""
        lookup = (req.role_arn, req.external_id, req.sts_endpoint, id(session))
        key = self._latest.get(lookup)
        if key is None or (refused is not None and self._sessions.get(key) is not refused):
            return
        del self._latest[lookup]
        self._sessions.pop(key, None)

    def clear(self) -> None:
        self._sessions.clear()
        self._latest.clear()

    async def _assume(self, session: Any, req: AssumeRequest, lookup: _Lookup) -> SessionCredentials:
        base_key = await asyncio.to_thread(base_access_key, session)
        key = (req.role_arn, req.external_id, req.sts_endpoint, base_key)
        found = self._sessions.get(key)
        if found is None or not found.fresh(time.time()):
            # several botocore sessions may hold the same base key: one STS call per cache key
            task = self._calls.get(key)
            if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
                task = asyncio.get_running_loop().create_task(self._call_sts(session, req, key))
                self._calls[key] = task
                task.add_done_callback(lambda t: self._finished(self._calls, key, t))
            found = await asyncio.shield(task)
        self._latest[lookup] = key
        return found

    async def _call_sts(self, session: Any, req: AssumeRequest, key: CacheKey) -> SessionCredentials:
        self.assume_calls += 1
        found = await asyncio.to_thread(assume_role, session, req)
        self._sessions[key] = found
        return found

    @staticmethod
    def _finished(
        inflight: dict[Any, asyncio.Task[SessionCredentials]],
        key: Any,
        task: asyncio.Task[SessionCredentials],
    ) -> None:
        if inflight.get(key) is task:
            del inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so no "never retrieved" warning when all waiters left


CACHE = RoleCredentialCache()
"""The process-wide cache."""


def base_access_key(session: Any) -> str:
    """The access key id of the base credentials (blocking: may query the metadata service)."""
    try:
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(f"cannot load base AWS credentials: {exc}", code=NO_CREDENTIALS) from exc
    if frozen is None or not frozen.access_key:
        raise AwsError(
            "no base AWS credentials found (environment, profile, container or instance role)",
            code=NO_CREDENTIALS,
        )
    return str(frozen.access_key)


def assume_role(session: Any, req: AssumeRequest) -> SessionCredentials:
    """Call STS AssumeRole (blocking) and return the session credentials."""
    sts = endpoints.client(session, "sts", req.region, req.sts_endpoint)
    try:
        answer = sts.assume_role(
            RoleArn=req.role_arn,
            RoleSessionName=req.session_name,
            ExternalId=req.external_id,
            DurationSeconds=SESSION_DURATION,
        )
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or "UnknownError"
        raise AwsError(f"STS AssumeRole: {error.get('Message') or code}", code=code, status=status) from exc
    except (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError) as exc:
        raise AwsError(f"STS AssumeRole timed out ({req.sts_endpoint})", code=TIMED_OUT) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise AwsError("no base AWS credentials found", code=NO_CREDENTIALS) from exc
    except (botocore.exceptions.HTTPClientError, botocore.exceptions.EndpointConnectionError) as exc:
        raise AwsError(f"STS AssumeRole: cannot reach {req.sts_endpoint}: {exc}", code=CONNECTION_FAILED) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError(f"STS AssumeRole failed: {exc}", code=BAD_ANSWER) from exc
    creds = answer["Credentials"]
    log.info("assumed role %s (session %s)", req.role_arn, req.session_name)
    return SessionCredentials(
        access_key=creds["AccessKeyId"],
        secret_key=creds["SecretAccessKey"],
        token=creds.get("SessionToken"),
        expires_at=creds["Expiration"].timestamp(),
        role_arn=req.role_arn,
    )
