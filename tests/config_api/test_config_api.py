"""The Config API: CRUD of sources and destinations, validation as at start-up, file vs API ownership,
persistence across a restart, the endpoint allow-list."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from eventrelay.config.store import STORE_FILE
from eventrelay.runtime import Runtime

from .conftest import FILE_KEY, TOKEN, Client, StartRuntime, file_config, lambda_destination

SOURCES = "/api/v1/config/sources"
DESTS = "/api/v1/config/destinations"


async def test_token_required(api: tuple[Runtime, Client]) -> None:
    _, client = api
    assert (await client.get(SOURCES, token=None)).status == 401
    assert (await client.post(DESTS, lambda_destination(), token="wrong-token-0123456789")).status == 401
    assert (await client.get(SOURCES)).status == 200


async def test_create_source_shows_write_key_once_and_it_works(api: tuple[Runtime, Client]) -> None:
    runtime, client = api
    created = await client.post(SOURCES, {"name": "ios"})
    assert created.status == 201
    body = created.json()
    key = body["write_key"]
    assert len(key) >= 32 and body["managed_by"] == "api"
    assert created.headers["cache-control"] == "no-store"
    assert runtime.source_for_key(key) == "ios"  # ingest accepts it at once, no restart
    for answer in (await client.get(SOURCES), await client.get(f"{SOURCES}/ios")):
        assert answer.status == 200
        assert key not in answer.body.decode() and FILE_KEY not in answer.body.decode()
    assert (await client.get(SOURCES)).json()["sources"] == [
        {"name": "web", "managed_by": "file"},
        {"name": "ios", "managed_by": "api"},
    ]


async def test_rotate_and_delete_source(api: tuple[Runtime, Client]) -> None:
    runtime, client = api
    old = (await client.post(SOURCES, {"name": "ios"})).json()["write_key"]
    rotated = await client.patch(f"{SOURCES}/ios", {"rotate_write_key": True})
    assert rotated.status == 200
    new = rotated.json()["write_key"]
    assert new != old and runtime.source_for_key(new) == "ios" and runtime.source_for_key(old) is None
    assert (await client.delete(f"{SOURCES}/ios")).status == 204
    assert runtime.source_for_key(new) is None
    assert (await client.get(f"{SOURCES}/ios")).status == 404


async def test_source_write_key_cannot_be_chosen(api: tuple[Runtime, Client]) -> None:
    _, client = api
    answer = await client.post(SOURCES, {"name": "ios", "write_key": "mine-mine-mine-mine"})
    assert answer.status == 422
    assert answer.json()["error"]["errors"][0]["field"] == "write_key"
    bad = await client.post(SOURCES, {"name": "bad name!"})
    assert bad.status == 422
    assert bad.json()["error"]["errors"][0]["field"] == "name"


async def test_file_entities_are_shown_and_changes_refused(api: tuple[Runtime, Client]) -> None:
    _, client = api
    got = (await client.get(f"{DESTS}/file-dest")).json()
    assert got["managed_by"] == "file" and got["external_id"] == "ws_123"
    for answer in (
        await client.patch(f"{DESTS}/file-dest", {"settings": {"region": "eu-west-1"}}),
        await client.put(f"{DESTS}/file-dest", lambda_destination("file-dest")),
        await client.delete(f"{DESTS}/file-dest"),
        await client.delete(f"{SOURCES}/web"),
        await client.patch(f"{SOURCES}/web", {"rotate_write_key": True}),
    ):
        assert answer.status == 409
        assert answer.json()["error"]["code"] == "managed_by_file"
        assert "configuration file" in answer.json()["error"]["message"]
    dup = await client.post(DESTS, lambda_destination("file-dest"))
    assert dup.status == 409 and "configuration file" in dup.json()["error"]["message"]


async def test_destination_crud_takes_effect_without_restart(api: tuple[Runtime, Client]) -> None:
    runtime, client = api
    created = await client.post(DESTS, lambda_destination() | {"sources": ["web"]})
    assert created.status == 201, created.body
    assert created.json()["managed_by"] == "api"
    assert "api-dest" in runtime.destinations
    assert runtime.route("web", {"type": "track", "event": "x", "userId": "u"}) == ("file-dest", "api-dest")

    patched = await client.patch(f"{DESTS}/api-dest", {"settings": {"region": "eu-west-1", "log_type": "Tail"}})
    assert patched.status == 200, patched.body
    assert patched.json()["settings"]["region"] == "eu-west-1"
    assert patched.json()["settings"]["lambda"] == "my-fn:live"  # untouched by the merge patch
    assert runtime.destination_config("api-dest").settings.region == "eu-west-1"

    view = (await client.get(f"{DESTS}/api-dest")).json()
    view["enabled"] = False
    replaced = await client.put(f"{DESTS}/api-dest", view)  # GET -> edit -> PUT round-trips
    assert replaced.status == 200, replaced.body
    assert runtime.route("web", {"type": "track", "event": "x", "userId": "u"}) == ("file-dest",)

    assert (await client.delete(f"{DESTS}/api-dest")).status == 204
    assert "api-dest" not in runtime.destinations
    assert (await client.get(f"{DESTS}/api-dest")).status == 404


async def test_invalid_settings_are_422_naming_the_field_and_nothing_is_applied(
    api: tuple[Runtime, Client],
) -> None:
    runtime, client = api
    assert (await client.post(DESTS, lambda_destination())).status == 201
    before = runtime.config
    cases = {
        "settings.lambda": {"lambda": "arn:aws:lambda:us-west-2:123:function:f"},
        "settings.region": {"region": "moon-1"},
        "settings.role_address": {"role_address": "arn:aws:iam::123:user/x"},
        "settings.client_context": {"client_context": {"custom": {"blob": "x" * 4000}}},
        "settings.external_id": {"external_id": "ws_other"},
    }
    for field, change in cases.items():
        # A valid change beside the invalid one: nothing of the request may be applied.
        answer = await client.patch(f"{DESTS}/api-dest", {"settings": {"log_type": "Tail", **change}})
        assert answer.status == 422, (field, answer.body)
        error = answer.json()["error"]
        assert error["code"] == "invalid_config"
        assert error["errors"][0]["field"] == field, error
        assert error["errors"][0]["message"]
        assert runtime.config is before
    big = await client.patch(f"{DESTS}/api-dest", {"settings": cases["settings.client_context"]})
    assert "at most 3583" in big.json()["error"]["errors"][0]["message"]  # the rule, with its limit
    unknown = await client.post(DESTS, lambda_destination("x", colour="blue"))
    assert unknown.status == 422
    assert unknown.json()["error"]["errors"][0] == {
        "field": "settings.colour",
        "message": "unknown key (not allowed here)",
    }
    bad_source = await client.post(DESTS, lambda_destination("y") | {"sources": ["nope"]})
    assert bad_source.status == 422
    assert bad_source.json()["error"]["errors"][0]["field"] == "sources[0]"
    assert (await client.get(f"{DESTS}/api-dest")).json()["settings"]["log_type"] == "None"
    assert [d.name for d in runtime.config.destinations] == ["file-dest", "api-dest"]


async def test_bad_bodies(api: tuple[Runtime, Client]) -> None:
    _, client = api
    assert (await client.post(DESTS, raw=b"{not json")).status == 400
    assert (await client.post(DESTS, [1, 2])).status == 400
    assert (await client.post(DESTS, raw=b"{" + b" " * 70_000 + b"}")).status == 413


async def test_endpoint_url_must_be_on_the_allow_list(api: tuple[Runtime, Client]) -> None:
    runtime, client = api
    refused = await client.post(DESTS, lambda_destination(endpoint_url="http://169.254.169.254/latest"))
    assert refused.status == 422
    (error,) = refused.json()["error"]["errors"]
    assert error["field"] == "settings.endpoint_url"
    assert "allow-list" in error["message"]
    wrong_port = await client.post(DESTS, lambda_destination(endpoint_url="http://localhost:9999"))
    assert wrong_port.status == 422
    assert "api-dest" not in runtime.destinations
    ok = await client.post(DESTS, lambda_destination(endpoint_url="http://localhost:4566"))
    assert ok.status == 201, ok.body
    any_port = await client.post(DESTS, lambda_destination("b", endpoint_url="https://vpce.internal:8443"))
    assert any_port.status == 201, any_port.body
    moved = await client.patch(f"{DESTS}/api-dest", {"settings": {"endpoint_url": "http://evil.example"}})
    assert moved.status == 422
    assert runtime.destination_config("api-dest").settings.endpoint_url == "http://localhost:4566"


async def test_api_entities_persist_across_a_restart(tmp_path: Path, start_runtime: StartRuntime) -> None:
    runtime, client = await start_runtime(file_config(tmp_path))
    key = (await client.post(SOURCES, {"name": "ios"})).json()["write_key"]
    assert (await client.post(DESTS, lambda_destination() | {"sources": ["ios"]})).status == 201
    await runtime.stop()
    store = tmp_path / "data" / STORE_FILE
    assert stat.S_IMODE(store.stat().st_mode) == 0o600  # it holds write keys

    again, client = await start_runtime(file_config(tmp_path))
    assert again.source_for_key(key) == "ios"
    assert (await client.get(f"{DESTS}/api-dest")).json()["managed_by"] == "api"
    assert (await client.get(f"{SOURCES}/ios")).json() == {"name": "ios", "managed_by": "api"}
    assert again.route("ios", {"type": "track", "event": "x", "userId": "u"}) == ("file-dest", "api-dest")
    # Still managed through the API after the restart.
    assert (await client.delete(f"{DESTS}/api-dest")).status == 204


async def test_a_source_in_use_cannot_be_deleted(api: tuple[Runtime, Client]) -> None:
    _, client = api
    await client.post(SOURCES, {"name": "ios"})
    await client.post(DESTS, lambda_destination() | {"sources": ["ios"]})
    answer = await client.delete(f"{SOURCES}/ios")
    assert answer.status == 409
    assert "api-dest" in answer.json()["error"]["message"]


async def test_file_takes_over_a_name_defined_by_both(tmp_path: Path, start_runtime: StartRuntime) -> None:
    runtime, client = await start_runtime(file_config(tmp_path))
    assert (await client.post(DESTS, lambda_destination())).status == 201
    await runtime.stop()
    config = file_config(tmp_path)
    data_dest = {
        "name": "api-dest",
        "settings": {
            "lambda": "file-fn",
            "region": "us-east-1",
            "role_address": config.destinations[0].settings.role_address,
        },
    }
    from eventrelay.config.load import validate_config
    from eventrelay.config.store import config_data

    data = config_data(config)
    data["destinations"].append(data_dest)
    _, client = await start_runtime(validate_config(data))
    got = (await client.get(f"{DESTS}/api-dest")).json()
    assert got["managed_by"] == "file" and got["settings"]["lambda"] == "file-fn"
    assert TOKEN  # the token fixture is the file's


async def test_concurrent_creations_all_land(api: tuple[Runtime, Client]) -> None:
    import asyncio

    runtime, client = api
    original = runtime.reconfigure

    async def slow_reconfigure(config: Any) -> None:  # closing connections takes time in real life
        await asyncio.sleep(0.01)
        await original(config)

    runtime.reconfigure = slow_reconfigure  # type: ignore[method-assign]
    answers = await asyncio.gather(*(client.post(SOURCES, {"name": f"s{i}"}) for i in range(8)))
    assert [a.status for a in answers] == [201] * 8
    listed = {s["name"] for s in (await client.get(SOURCES)).json()["sources"]}
    assert listed == {"web", *(f"s{i}" for i in range(8))}
    assert all(runtime.source_for_key(a.json()["write_key"]) for a in answers)
