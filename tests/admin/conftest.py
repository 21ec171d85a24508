"""Fixtures of the admin tests: a served app with the real SQLite queue and delivery log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.admin.server import Served, make_config, serve


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(make_config(tmp_path / "data")) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
