"""``GetFunctionConcurrency`` over rest-json: ``GET /2019-09-30/functions/{FunctionName}/concurrency``.

Answers ``{"ReservedConcurrentExecutions": N}``, or ``{}`` when the function has none (as Lambda
does). Needs ``lambda:GetFunctionConcurrency`` on the function's unqualified ARN (a role's
``allow_get_concurrency``); authentication and errors are Invoke's (``invoke_api.py``).
"""

from __future__ import annotations

from aiohttp import web

from eventrelay.localaws.auth import Authenticator
from eventrelay.localaws.functions import FunctionRegistry
from eventrelay.localaws.iam import Role
from eventrelay.localaws.invoke_api import authenticate, authorize, error

CONCURRENCY_PATH = "/2019-09-30/functions/{function_name}/concurrency"


class ConcurrencyApi:
    def __init__(
        self, registry: FunctionRegistry, auth: Authenticator, *, allow_base_credentials: bool = False
    ) -> None:
        self.registry = registry
        self.auth = auth
        self.allow_base_credentials = allow_base_credentials

    async def get(self, request: web.Request) -> web.Response:
        caller = authenticate(self.auth, request, await request.read())
        if isinstance(caller, web.Response):
            return caller
        raw_name = request.match_info["function_name"]
        try:
            ref = self.registry.parse(raw_name)
        except ValueError:
            return error(400, "ValidationException", f"Value '{raw_name}' at 'functionName' is not a function name")
        resource = self.registry.arn(ref.name)
        refused = authorize(
            caller,
            "lambda:GetFunctionConcurrency",
            Role.may_get_concurrency,
            resource,
            ref.name,
            self.allow_base_credentials,
        )
        if refused is not None:
            return refused
        target = self.registry.lookup(ref, None)
        if target is None:
            return error(404, "ResourceNotFoundException", f"Function not found: {resource}")
        reserved = target.spec.reserved_concurrency
        return web.json_response({} if reserved is None else {"ReservedConcurrentExecutions": reserved})
