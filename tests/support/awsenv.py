"""The AWS environment botocore sees in a test: nothing of the machine's, only what the test gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def isolate_aws_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    sts_url: str | None = None,
    lambda_url: str | None = None,
) -> None:
    """Remove every ``AWS_*`` variable, point the config and credentials files at files that do not
    exist, turn instance metadata off; then set the given base credentials and endpoints (botocore's
    own ``AWS_ENDPOINT_URL_STS`` / ``AWS_ENDPOINT_URL_LAMBDA``). Undone by ``monkeypatch`` afterwards."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    given = {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_ENDPOINT_URL_STS": sts_url,
        "AWS_ENDPOINT_URL_LAMBDA": lambda_url,
    }
    for name, value in given.items():
        if value is not None:
            monkeypatch.setenv(name, value)
