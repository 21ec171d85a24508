"""Suite-wide options. Each test area keeps its own fixtures in its own conftest.py."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long soak variants (more cases, more rounds); off in CI",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--soak"):
        os.environ["EVENTRELAY_SOAK"] = "1"  # read at import by suites that size their cases


def soak() -> bool:
    return os.environ.get("EVENTRELAY_SOAK") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak mode only: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
