"""STS over the query protocol (``POST /`` with ``Action=...``): AssumeRole and GetCallerIdentity.

Answers and errors have AWS's XML shapes, so botocore parses them unchanged.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from aiohttp import web

from eventrelay.localaws.auth import Authenticator, Caller, Denied
from eventrelay.localaws.iam import Roles

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")  # AWS: RoleSessionName 2-64
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")  # AWS: ExternalId 2-1224
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 900, 43200, 3600  # AWS: DurationSeconds bounds and default
MAX_ROLE_ARN = 2048  # AWS: RoleArn 20-2048 characters

DENIED_STATUS = {  # authentication failure -> (HTTP status, STS error code)
    "missing": (403, "MissingAuthenticationToken"),
    "malformed": (400, "IncompleteSignature"),
    "unknown_key": (403, "InvalidClientTokenId"),
    "bad_signature": (403, "SignatureDoesNotMatch"),
    "skew": (400, "RequestExpired"),
    "expired": (403, "ExpiredToken"),
}


class StsApi:
    def __init__(self, auth: Authenticator, roles: Roles) -> None:
        self.auth = auth
        self.roles = roles

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        params.update({k: v for k, v in request.query.items() if k not in params})
        try:
            caller = self.auth.authenticate(request.method, request.raw_path, request.headers, body)
        except Denied as exc:
            status, code = DENIED_STATUS[exc.kind]
            return error(status, code, exc.message)
        action = params.get("Action", "")
        if action == "AssumeRole":
            return self.assume_role(caller, params)
        if action == "GetCallerIdentity":
            return self.caller_identity(caller)
        return error(400, "InvalidAction", f"Could not find operation {action} for version 2011-06-15")

    def assume_role(self, caller: Caller, params: dict[str, str]) -> web.Response:
        problems = _validate(params)
        if problems:
            detail = "; ".join(problems)
            return error(400, "ValidationError", f"{len(problems)} validation error(s) detected: {detail}")
        role_arn, external_id = params["RoleArn"], params.get("ExternalId")
        role = self.roles.by_arn(role_arn)
        if role is None or not role.trusts(caller.arn, self.roles.account) or not role.external_id_ok(external_id):
            return error(
                403,
                "AccessDenied",
                f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            )
        duration = int(params.get("DurationSeconds") or DEFAULT_DURATION)
        s = self.auth.sessions.issue(role, params["RoleSessionName"], duration)
        expiration = datetime.fromtimestamp(s.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return _xml(
            "AssumeRole",
            (
                f"<AssumedRoleUser><Arn>{escape(s.arn)}</Arn><AssumedRoleId>{escape(s.assumed_role_id)}"
                "</AssumedRoleId></AssumedRoleUser>"
                f"<Credentials><AccessKeyId>{s.access_key}</AccessKeyId><SecretAccessKey>{escape(s.secret)}"
                f"</SecretAccessKey><SessionToken>{escape(s.token)}</SessionToken><Expiration>{expiration}"
                "</Expiration></Credentials>"
            ),
        )

    def caller_identity(self, caller: Caller) -> web.Response:
        user_id = caller.session.assumed_role_id if caller.session else caller.access_key
        return _xml(
            "GetCallerIdentity",
            (
                f"<Arn>{escape(caller.arn)}</Arn><UserId>{escape(user_id)}</UserId>"
                f"<Account>{self.roles.account}</Account>"
            ),
        )


def _validate(params: dict[str, str]) -> list[str]:
    problems: list[str] = []
    role_arn = params.get("RoleArn")
    if not role_arn or not 20 <= len(role_arn) <= MAX_ROLE_ARN:
        problems.append(
            f"Value at 'roleArn' failed to satisfy constraint: Member must have length between 20 and {MAX_ROLE_ARN}"
        )
    name = params.get("RoleSessionName")
    if name is None or not SESSION_NAME.match(name):
        problems.append(
            f"Value {name!r} at 'roleSessionName' failed to satisfy constraint: Member must have "
            "length between 2 and 64 and satisfy regular expression pattern: [\\w+=,.@-]*"
        )
    ext = params.get("ExternalId")
    if ext is not None and not EXTERNAL_ID.match(ext):
        problems.append(
            "Value at 'externalId' failed to satisfy constraint: Member must have length between "
            "2 and 1224 and satisfy regular expression pattern: [\\w+=,.@:\\/-]*"
        )
    duration = params.get("DurationSeconds")
    if duration is not None and not (duration.isdigit() and MIN_DURATION <= int(duration) <= MAX_DURATION):
        problems.append(
            f"Value {duration!r} at 'durationSeconds' failed to satisfy constraint: Member must "
            f"have value between {MIN_DURATION} and {MAX_DURATION}"
        )
    return problems


def _xml(action: str, result: str) -> web.Response:
    text = (
        f'<{action}Response xmlns="{NS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    )
    return web.Response(text=text, content_type="text/xml")


def error(status: int, code: str, message: str) -> web.Response:
    kind = "Sender" if status < 500 else "Receiver"
    request_id = str(uuid.uuid4())
    text = (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return web.Response(status=status, text=text, content_type="text/xml", headers={"x-amzn-RequestId": request_id})
