"""``storage``: one backend's settings (sqlite | jetstream); a key of the other backend is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventrelay.cli.main import main
from eventrelay.config import parse_config
from eventrelay.config.model import JetStreamStorage, SqliteStorage
from eventrelay.core.errors import ConfigError
from eventrelay.deliverylog.jetstream import JetStreamDeliveryLog
from eventrelay.deliverylog.sqlite import SQLiteDeliveryLog
from eventrelay.queue.jetstream import JetStreamQueue
from eventrelay.queue.sqlite import SQLiteQueue
from eventrelay.runtime.build import open_log, open_queue


def _error(storage: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(f"storage: {storage}\n", {})
    return str(info.value)


def test_the_default_is_sqlite_in_eventrelay_data() -> None:
    storage = parse_config("{}", {}).storage
    assert isinstance(storage, SqliteStorage)
    assert (storage.backend, storage.path, storage.max_events) == ("sqlite", "./eventrelay-data", 2_000_000)


def test_without_a_backend_the_settings_are_sqlite_ones() -> None:
    storage = parse_config("storage: {path: ./data, max_events: 10}", {}).storage
    assert isinstance(storage, SqliteStorage) and (storage.path, storage.max_events) == ("./data", 10)


def test_a_jetstream_key_under_sqlite_is_named_and_said_to_be_jetstream_s() -> None:
    msg = _error('{backend: sqlite, servers: ["nats://n1:4222"], replicas: 3}')
    assert "storage.servers: belongs to backend jetstream, not sqlite" in msg
    assert "storage.replicas: belongs to backend jetstream, not sqlite" in msg


def test_a_jetstream_key_without_a_backend_is_refused_too() -> None:
    assert "storage.stream: belongs to backend jetstream" in _error("{stream: OTHER}")


def test_jetstream_settings_load_with_their_defaults() -> None:
    storage = parse_config('storage: {backend: jetstream, servers: ["nats://n1:4222"]}', {}).storage
    assert isinstance(storage, JetStreamStorage)
    assert (storage.servers, storage.replicas, storage.stream) == (["nats://n1:4222"], 1, "EVENTRELAY")
    assert (storage.path, storage.max_events) == ("./eventrelay-data", 2_000_000)


def test_errors_inside_a_backend_name_the_field_not_the_backend_tag() -> None:
    msg = _error("{backend: jetstream, replicas: 9}")
    assert msg.startswith("storage.replicas: ") and "jetstream.replicas" not in msg
    assert _error("{backend: sqlite, max_events: 0}").startswith("storage.max_events: ")


def test_an_unknown_key_is_still_an_unknown_key() -> None:
    assert "storage.colour: unknown key" in _error("{backend: jetstream, colour: red}")


def test_an_unknown_backend_is_named_with_the_known_ones() -> None:
    msg = _error("{backend: postgres}")
    assert "storage.backend: unknown backend 'postgres'; one of: sqlite, jetstream" in msg


def test_validate_shows_the_key_of_the_other_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "eventrelay.yaml"
    config.write_text('storage: {backend: sqlite, path: ./data, servers: ["nats://n1:4222"]}\n')
    assert main(["validate", "--config", str(config)]) == 2
    assert "storage.servers: belongs to backend jetstream" in capsys.readouterr().err


def test_each_backend_opens_its_own_stores(tmp_path: Path) -> None:
    """The JetStream delivery log keeps its local index under ``storage.path`` as well."""
    sqlite = parse_config(f"storage: {{backend: sqlite, path: {tmp_path / 'a'}}}", {})
    assert isinstance(open_queue(sqlite), SQLiteQueue)
    assert isinstance(open_log(sqlite), SQLiteDeliveryLog)
    jetstream = parse_config(f"storage: {{backend: jetstream, stream: T, path: {tmp_path / 'b'}}}", {})
    assert isinstance(open_queue(jetstream), JetStreamQueue)
    log = open_log(jetstream)
    assert isinstance(log, JetStreamDeliveryLog) and log.path == tmp_path / "b"
