"""botocore sessions, clients and endpoint resolution, shared by the whole process.

Endpoints resolve exactly as botocore resolves them, because botocore does it: a client is
created for the service and its ``meta.endpoint_url`` read. That honours ``endpoint_url``
(``settings.endpoint_url``), ``AWS_ENDPOINT_URL_STS``/``AWS_ENDPOINT_URL_LAMBDA``,
``AWS_ENDPOINT_URL``, ``endpoint_url`` in the profile, FIPS/dual-stack settings and the
regional defaults (``https://lambda.{region}.amazonaws.com``).

Every function here may block (files, the instance metadata service): call them in a thread.
botocore's session is not safe for concurrent client creation, hence the lock.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import botocore.config
import botocore.session

CONNECT_TIMEOUT = 5.0  # seconds; STS answers in tens of milliseconds when reachable
READ_TIMEOUT = 10.0  # seconds; an AssumeRole call slower than this is failing
STS_MAX_ATTEMPTS = 2  # botocore standard mode: one retry of throttling/5xx, then we classify

_lock = threading.RLock()
_default_session: Any = None
_clients: dict[tuple[Any, ...], Any] = {}


@dataclass(frozen=True, slots=True)
class Endpoints:
    sts: str
    lambda_: str


def default_session() -> Any:
    """The process-wide botocore session (standard credential chain, profiles, config file)."""
    global _default_session
    with _lock:
        if _default_session is None:
            _default_session = botocore.session.get_session()
        return _default_session


def client(session: Any, service: str, region: str, endpoint_url: str | None) -> Any:
    """A cached botocore client; the key includes the environment botocore reads endpoints from."""
    env = tuple(
        os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", f"AWS_ENDPOINT_URL_{service.upper()}", "AWS_PROFILE", "AWS_CONFIG_FILE")
    )
    key = (session, service, region, endpoint_url, env)
    with _lock:
        found = _clients.get(key)
        if found is None:
            config = botocore.config.Config(
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
                retries={"mode": "standard", "max_attempts": STS_MAX_ATTEMPTS},
            )
            found = session.create_client(service, region_name=region, endpoint_url=endpoint_url, config=config)
            _clients[key] = found
        return found


def resolve_endpoints(session: Any, region: str, endpoint_url: str | None) -> Endpoints:
    """The STS and Lambda endpoints botocore would use for ``region`` (blocking)."""
    return Endpoints(
        sts=str(client(session, "sts", region, endpoint_url).meta.endpoint_url),
        lambda_=str(client(session, "lambda", region, endpoint_url).meta.endpoint_url),
    )
