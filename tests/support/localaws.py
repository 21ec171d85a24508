"""The local AWS endpoint (STS, Lambda Invoke) in the test's own event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from eventrelay.config.model import LocalAws, LocalAwsFunction
from eventrelay.localaws.server import LocalAwsServer


def handler_functions(tmp_path: Path, source: str, *names: str) -> LocalAws:
    """Settings of functions ``names`` that all run ``handle`` of ``source`` (written to
    ``tmp_path/functions/handler.py``), each with version 1 aliased ``live``."""
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "handler.py").write_text(source, encoding="utf-8")
    fn = LocalAwsFunction(handler="handler.handle", versions=["1"], aliases={"live": "1"})
    return LocalAws(functions_dir=str(functions), functions=dict.fromkeys(names, fn))


@asynccontextmanager
async def local_aws_endpoint(settings: LocalAws, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalAwsServer]:
    """A started endpoint; botocore's STS and Lambda endpoint variables point at it until it stops."""
    server = await LocalAwsServer(settings).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
    try:
        yield server
    finally:
        await server.stop()
