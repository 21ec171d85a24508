"""Fixtures for the IAM documents: configurations written as a user would write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eventrelay.config.load import validate_config
from eventrelay.config.model import Config

ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"
KEY = "abcdefghijklmnop1234"


def make_config(
    *destinations: dict[str, Any], workspace: str | None = "ws_123", sources: tuple[str, ...] = ("web",)
) -> Config:
    data: dict[str, Any] = {
        "sources": [{"name": s, "write_key": f"{KEY}-{s}"} for s in sources],
        "destinations": list(destinations),
    }
    if workspace:
        data["workspace"] = {"id": workspace}
    return validate_config(data)


def dest(name: str = "lambda-prod", lambda_: str = "my-fn", **settings: Any) -> dict[str, Any]:
    extra = {k: v for k, v in settings.items() if k != "sources"}
    out: dict[str, Any] = {
        "name": name,
        "settings": {"lambda": lambda_, "region": "us-west-2", "role_address": ROLE, **extra},
    }
    if "sources" in settings:
        out["sources"] = settings["sources"]
    return out


@pytest.fixture
def write_config(tmp_path: Path) -> Any:
    def write(config: dict[str, Any]) -> Path:
        path = tmp_path / "eventrelay.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    return write
