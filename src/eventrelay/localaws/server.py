"""The local AWS endpoint: Lambda Invoke, GetFunctionConcurrency and STS on one loopback port (aiohttp;
TCP_NODELAY is set on every accepted socket by aiohttp's protocol, which saves ~90 ms per call
against Nagle + delayed ACK).

``start_from_config(config)`` starts it as ``eventrelay serve`` does when the config has ``localaws:``.
Destinations without ``settings.endpoint_url`` reach it because it sets ``AWS_ENDPOINT_URL_STS`` and
``AWS_ENDPOINT_URL_LAMBDA`` in this process's environment, unless the environment already names
endpoints (``AWS_ENDPOINT_URL*``), which are always honoured; ``stop()`` removes what it set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from eventrelay.config.model import Config, LocalAws
from eventrelay.localaws.auth import Authenticator, Sessions
from eventrelay.localaws.concurrency_api import CONCURRENCY_PATH, ConcurrencyApi
from eventrelay.localaws.functions import FunctionRegistry
from eventrelay.localaws.iam import Roles
from eventrelay.localaws.invoke_api import LambdaApi, unknown_operation
from eventrelay.localaws.pool import Echo, free_socket
from eventrelay.localaws.runtime_api import RuntimeApi
from eventrelay.localaws.sts import StsApi

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # read whole so 413 answers are parsed by clients, not cut off
INVOKE_PATH = "/2015-03-31/functions/{function_name}/invocations"
ENDPOINT_ENV = ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_LAMBDA")
LOCAL_ACCESS_KEY = "LOCAL-EVENTRELAY-DEMO"  # obviously local base credentials when none are configured
LOCAL_SECRET_KEY = "local-eventrelay-secret-not-an-aws-key"


class LocalAwsServer:
    def __init__(
        self,
        settings: LocalAws,
        *,
        config: Config | None = None,
        base_dir: Path | None = None,
        echo: Echo | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = Sessions()
        self.roles = Roles.from_config(config, settings)
        self.registry = FunctionRegistry.from_config(settings, base_dir)
        users = {k: v.get_secret_value() for k, v in settings.users.items()}
        self.auth = Authenticator(self.sessions, users, settings.account_id)
        self.runtime = RuntimeApi()
        if echo is None and settings.echo_logs:
            echo = print_echo
        self.lambda_api = LambdaApi(
            self.registry,
            self.auth,
            self.runtime,
            allow_base_credentials=settings.allow_base_credentials_invoke,
            echo=echo,
        )
        self.sts_api = StsApi(self.auth, self.roles)
        self.concurrency_api = ConcurrencyApi(
            self.registry, self.auth, allow_base_credentials=settings.allow_base_credentials_invoke
        )
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post(INVOKE_PATH, self.lambda_api.invoke)
        app.router.add_get(CONCURRENCY_PATH, self.concurrency_api.get)
        app.router.add_route("*", "/", self.sts_api.handle)
        app.router.add_route("*", "/{tail:.*}", unknown_operation)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.url = ""
        self._env_set: list[str] = []

    async def start(self) -> LocalAwsServer:
        await self.runtime.start()
        await self._runner.setup()
        sock = free_socket(self.settings.host) if self.settings.port == 0 else None
        site: web.BaseSite
        if sock is not None:
            site = web.SockSite(self._runner, sock)
        else:
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        host, port = _bound(site, sock, self.settings)
        self.url = f"http://{host}:{port}"
        log.info(
            "local AWS endpoint (Lambda Invoke, STS) at %s; functions: %s",
            self.url,
            ", ".join(sorted(self.registry.functions)) or "none",
        )
        return self

    async def stop(self) -> None:
        for name in self._env_set:
            os.environ.pop(name, None)
        self._env_set.clear()
        await self.lambda_api.close()
        await self._runner.cleanup()
        await self.runtime.stop()

    def export_endpoint_env(self) -> None:
        """Point botocore's STS and Lambda endpoints here, unless the environment already names some."""
        if any(k.startswith("AWS_ENDPOINT_URL") for k in os.environ):
            log.info("AWS endpoints from the environment are honoured; the local endpoint is at %s", self.url)
            return
        for name in ENDPOINT_ENV:
            os.environ[name] = self.url
            self._env_set.append(name)

    def ensure_base_credentials(self) -> None:
        """Give botocore obviously-local base credentials when it would find none at all."""
        if _has_credentials():
            return
        os.environ["AWS_ACCESS_KEY_ID"] = LOCAL_ACCESS_KEY
        os.environ["AWS_SECRET_ACCESS_KEY"] = LOCAL_SECRET_KEY
        self._env_set += ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        log.info(
            "no AWS credentials found: using local-only credentials (access key %s) for the local endpoint",
            LOCAL_ACCESS_KEY,
        )
        # botocore would go on to log "Found credentials in environment variables" about these very
        # keys, which reads as if real ones had been found after all.
        if not log.isEnabledFor(logging.DEBUG):
            logging.getLogger("botocore.credentials").setLevel(logging.WARNING)


async def start_from_config(
    config: Config, base_dir: Path | None = None, *, echo: Echo | None = None
) -> LocalAwsServer:
    """Start the endpoint ``config.localaws`` describes and make this process's AWS calls reach it.
    ``echo`` receives what handlers print (default: stdout when ``localaws.echo_logs`` is true)."""
    settings = config.localaws or LocalAws()
    server = await LocalAwsServer(settings, config=config, base_dir=base_dir, echo=echo).start()
    server.export_endpoint_env()
    server.ensure_base_credentials()
    return server


def print_echo(function: str, chunk: bytes) -> None:
    """Show a handler's output on this process's stdout, prefixed with the function name."""
    text = chunk.decode("utf-8", "replace").replace("\r", "\n")
    for line in text.splitlines():
        sys.stdout.write(f"[{function}] {line}\n")
    sys.stdout.flush()


def _has_credentials() -> bool:
    """Whether botocore's chain finds base credentials, without asking the EC2 metadata service (which
    costs seconds off EC2)."""
    import botocore.session

    resolver = botocore.session.get_session().get_component("credential_provider")
    with contextlib.suppress(ValueError):
        resolver.remove("iam-role")
    try:
        return resolver.load_credentials() is not None
    except Exception:  # a broken profile still means the user configured credentials
        return True


def _bound(site: web.BaseSite, sock: object, settings: LocalAws) -> tuple[str, int]:
    import socket

    if isinstance(sock, socket.socket):
        host, port = sock.getsockname()[:2]
        return str(host), int(port)
    return settings.host, settings.port
