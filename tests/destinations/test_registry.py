"""A destination type is its folder plus one registry entry.

A throwaway type declared in this module (``recorder``: an in-process destination that records
what it receives) is registered with ``registry.register`` and nothing else in src changes; it is
then configured (the config file and the Config API validate its settings with its model),
routed (by its catalog name in ``integrations``), delivered (through a running Runtime with the
real SQLite queue and delivery log, reached over the Tracking API), listed (admin API), sent to
by ``eventrelay send``, skipped by ``eventrelay check`` (it declares no connection check) and left
out of the IAM documents (it needs no AWS role).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from eventrelay.awsiam import grants
from eventrelay.config.load import parse_config, validate_config
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError
from eventrelay.core.outcome import Category, Outcome, Verdict
from eventrelay.destinations import registry
from eventrelay.destinations.base import CheckableDestination, Destination, SendRequest
from eventrelay.destinations.kind import BuildSpec, DestinationType
from eventrelay.runtime import Runtime
from tests.support.cli import run_cli
from tests.support.inprocess import serving

ADMIN_TOKEN = "admin-token-0123456789abcdef"
WRITE_KEY = "write-key-0123456789abcdef"
ROLE = "arn:aws:iam::123456789012:role/eventrelay-invoke"
LAMBDA_SETTINGS = {"lambda": "my-fn:live", "region": "us-west-2", "role_address": ROLE}
DELIVERY_WAIT = 20.0  # seconds for a queued event to reach the recorder on a loaded 2-core machine


# -- the throwaway type ---------------------------------------------------------------------------
class RecorderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str = Field(min_length=1)
    """Shown in the admin API's listing (the type's summary)."""
    skip: list[str] = Field(default_factory=list)
    """Track event names this destination does not want."""


@dataclass
class Received:
    destination: str
    external_id: str | None
    event: Mapping[str, Any]


class Inbox:
    """What every recorder received, in order."""

    def __init__(self) -> None:
        self.items: list[Received] = []
        self._arrived = asyncio.Event()

    def add(self, item: Received) -> None:
        self.items.append(item)
        self._arrived.set()

    async def wait(self, count: int) -> list[Received]:
        """The items, once ``count`` have arrived."""
        async with asyncio.timeout(DELIVERY_WAIT):
            while len(self.items) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.items)


INBOX = Inbox()  # a new one per test (recorder_type)


@dataclass
class Recorder:
    """Delivers by recording the event (and the External ID the rule gives for its source)."""

    name: str
    spec: BuildSpec[RecorderSettings]
    closed: bool = False

    def wants(self, event: Mapping[str, Any]) -> bool:
        return event.get("event") not in self.spec.settings.skip

    async def send(self, request: SendRequest, timeout: float) -> Outcome:  # noqa: ASYNC109 (the protocol)
        INBOX.add(Received(self.name, self.spec.external_id_for(request.source), request.event))
        return Outcome(
            Category.DELIVERED, Verdict.SUCCESS, status_code=200, request={"label": self.spec.settings.label}
        )

    async def close(self) -> None:
        self.closed = True


def build_recorder(spec: BuildSpec[RecorderSettings]) -> Destination:
    return Recorder(spec.name, spec)


RECORDER = DestinationType(
    name="recorder",
    settings_model=RecorderSettings,
    catalog_names=("Recorder", "Event Recorder"),
    build=build_recorder,
    summary=lambda settings: {"label": settings.label},
    declined="its skip list",
)


@pytest.fixture(autouse=True)
def recorder_type() -> Iterator[None]:
    global INBOX
    INBOX = Inbox()
    registry.register(RECORDER)
    try:
        yield
    finally:
        registry.unregister(RECORDER.name)


def config_data(data_dir: Path, *, workspace: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "storage": {"backend": "sqlite", "path": str(data_dir)},
        "admin": {"token": ADMIN_TOKEN},
        "sources": [{"name": "web", "write_key": WRITE_KEY}],
        "destinations": [
            {"name": "rec", "type": "recorder", "settings": {"label": "blue", "skip": ["Ignored"]}},
            {"name": "lambda-prod", "settings": LAMBDA_SETTINGS},
        ],
    }
    if workspace is not None:
        data["workspace"] = {"id": workspace}
    return data


# -- configured -----------------------------------------------------------------------------------
def _errors(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    return str(caught.value)


def test_configured_with_its_own_settings_model(tmp_path: Path) -> None:
    config = parse_config(yaml.safe_dump(config_data(tmp_path)))
    rec = config.destinations[0]
    assert rec.type == "recorder" and rec.kind is RECORDER
    assert isinstance(rec.settings, RecorderSettings) and rec.settings.label == "blue"
    assert config.destinations[1].kind is registry.get("aws_lambda")

    def with_settings(settings: dict[str, Any], kind: str = "recorder") -> dict[str, Any]:
        data = config_data(tmp_path)
        data["destinations"][0] = {"name": "rec", "type": kind, "settings": settings}
        return data

    assert "destinations[0].settings.label" in _errors(with_settings({"label": ""}))
    assert "destinations[0].settings.colour: unknown key" in _errors(with_settings({"label": "x", "colour": "red"}))
    assert "destinations[0].settings.lambda: unknown key" in _errors(with_settings(LAMBDA_SETTINGS))
    assert "destinations[0].settings.region" in _errors(with_settings({"label": "x"}, kind="aws_lambda"))
    unknown = _errors(with_settings({"label": "x"}, kind="webhook"))
    assert "destinations[0].type: unknown destination type 'webhook' (known: aws_lambda, recorder)" in unknown


def test_unregistered_type_is_refused(tmp_path: Path) -> None:
    registry.unregister(RECORDER.name)
    assert "destinations[0].type: unknown destination type 'recorder' (known: aws_lambda)" in _errors(
        config_data(tmp_path)
    )


def test_a_type_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(RECORDER)


# -- routed ---------------------------------------------------------------------------------------
async def test_routed_by_its_catalog_names(tmp_path: Path) -> None:
    runtime = Runtime(validate_config(config_data(tmp_path)), role="ingest")
    await runtime.start()
    try:

        def routed(integrations: dict[str, Any], name: str = "Signed Up") -> tuple[str, ...]:
            event = {"type": "track", "event": name, "userId": "u1", "integrations": integrations}
            return runtime.route("web", event)

        assert routed({}) == ("rec", "lambda-prod")
        assert routed({"All": False, "Recorder": True}) == ("rec",)
        assert routed({"All": False, "Event Recorder": {"option": 1}}) == ("rec",)
        assert routed({"Recorder": False}) == ("lambda-prod",)
        assert routed({"recorder": False}) == ("rec", "lambda-prod")  # case-sensitive, as Segment
        assert routed({"All": False, "AWS Lambda": True}) == ("lambda-prod",)
        assert routed({"rec": False, "Recorder": True}) == ("lambda-prod",)  # its own name first
        assert routed({}, name="Ignored") == ("lambda-prod",)  # the instance's wants()
    finally:
        await runtime.stop()


# -- delivered and listed -------------------------------------------------------------------------
@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Runtime, str]]:
    runtime = Runtime(validate_config(config_data(tmp_path / "data")))  # role all: the engine delivers
    await runtime.start()
    try:
        async with serving(runtime) as url:
            yield runtime, url
    finally:
        await runtime.stop()


async def test_delivered_through_the_runtime_and_listed(served: tuple[Runtime, str]) -> None:
    runtime, url = served
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    event = {
        "userId": "u1",
        "event": "Signed Up",
        "messageId": "m-rec-1",
        "integrations": {"All": False, "Recorder": True},
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.post(f"{url}/v1/track", json=event, auth=aiohttp.BasicAuth(WRITE_KEY, "")) as r:
            assert r.status == 200, await r.text()
        (got,) = await INBOX.wait(1)
        assert (got.destination, got.event["messageId"], got.event["event"]) == ("rec", "m-rec-1", "Signed Up")
        assert got.external_id == "web"  # no workspace id: the External ID is the event's source

        async with asyncio.timeout(DELIVERY_WAIT):
            while True:
                async with http.get(f"{url}/api/v1/deliveries", params={"destination": "rec"}, headers=admin) as r:
                    deliveries = (await r.json())["deliveries"]
                if deliveries and deliveries[0]["status"] == "delivered":
                    break
                await asyncio.sleep(0.05)
        assert [d["message_id"] for d in deliveries] == ["m-rec-1"]
        async with http.get(f"{url}/api/v1/deliveries", params={"destination": "lambda-prod"}, headers=admin) as r:
            assert (await r.json())["deliveries"] == []  # integrations kept it from the Lambda

        async with http.get(f"{url}/api/v1/destinations", headers=admin) as r:
            assert r.status == 200
            listed = {d["name"]: d for d in (await r.json())["destinations"]}
        assert listed["rec"]["type"] == "recorder"
        assert listed["rec"]["label"] == "blue"  # the type's summary
        assert listed["rec"]["counts"]["delivered"] == 1
        assert listed["lambda-prod"]["function"] == "my-fn:live"

        # The Config API creates one too, validated with the type's model, and answers for its check.
        new = {"name": "rec-api", "type": "recorder", "settings": {"label": "green"}}
        async with http.post(f"{url}/api/v1/config/destinations", json=new, headers=admin) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["settings"] == {"label": "green", "skip": []}
        assert "rec-api" in runtime.destinations
        bad = {"name": "rec-bad", "type": "recorder", "settings": {"label": "x", "endpoint_url": "http://x"}}
        async with http.post(f"{url}/api/v1/config/destinations", json=bad, headers=admin) as r:
            assert r.status == 422
            (error,) = (await r.json())["error"]["errors"]
        assert error == {"field": "settings.endpoint_url", "message": "unknown key (not allowed here)"}
        async with http.post(f"{url}/api/v1/destinations/rec/check", headers=admin) as r:
            assert r.status == 409
            assert (await r.json())["error"]["code"] == "not_checkable"
        async with http.get(f"{url}/openapi.json") as r:
            schema = (await r.json())["paths"]["/api/v1/config/destinations/{name}"]["get"]["responses"]["200"]
        assert schema["content"]["application/json"]["schema"]["properties"]["type"]["enum"] == [
            "aws_lambda",
            "recorder",
        ]


# -- send, check and the IAM documents --------------------------------------------------------------
def _config_file(tmp_path: Path, **kw: Any) -> str:
    path = tmp_path / "eventrelay.yaml"
    path.write_text(yaml.safe_dump(config_data(tmp_path / "data", **kw)), encoding="utf-8")
    return str(path)


def test_send_goes_through_the_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config_file(tmp_path, workspace="ws_123")
    code, out, err = run_cli(capsys, "send", "--config", path, "--destination", "rec", "--event", "Hello")
    assert code == 0, out + err
    assert "You sent" in out and '"label": "blue"' in out  # "Request to destination" is the type's
    (got,) = INBOX.items
    assert (got.event["event"], got.external_id) == ("Hello", "ws_123")
    code, out, _ = run_cli(capsys, "send", "--config", path, "--destination", "rec", "--event", "Ignored")
    assert code == 1
    assert "rec does not take this event (its skip list); nothing sent" in out


def test_check_skips_a_type_without_a_connection_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not isinstance(build_recorder(BuildSpec("rec", RecorderSettings(label="x"), 1, None)), CheckableDestination)
    code, out, err = run_cli(capsys, "check", "--config", _config_file(tmp_path), "rec", "--json")
    assert code == 0, out + err
    assert "rec: a recorder destination has no connection check; skipped" in err


def test_iam_documents_leave_out_a_type_without_a_role(tmp_path: Path) -> None:
    config = validate_config(config_data(tmp_path))
    items = grants.grants(config)
    assert [(g.destination, g.function.arn) for g in items] == [
        ("lambda-prod", "arn:aws:lambda:us-west-2:123456789012:function:my-fn:live")
    ]
    with pytest.raises(ConfigError, match="no aws_lambda destination named 'rec'"):
        grants.grants(config, "rec")
    only_recorder = Config.model_validate(
        {**config_data(tmp_path), "destinations": config_data(tmp_path)["destinations"][:1]}
    )
    with pytest.raises(ConfigError, match="no aws_lambda destination is configured"):
        grants.grants(only_recorder)
