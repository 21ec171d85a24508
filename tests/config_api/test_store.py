"""The Config API store: atomic JSON in storage.path, merged with the file at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventrelay.config.store import (
    STORE_FILE,
    ApiEntities,
    load_entities,
    merge_api_entities,
    save_entities,
)
from eventrelay.core.errors import ConfigError

from .conftest import file_config, lambda_destination


def test_missing_store_is_empty_and_merge_keeps_the_file_config(tmp_path: Path) -> None:
    config = file_config(tmp_path)
    assert load_entities(tmp_path / "data" / STORE_FILE) == ApiEntities()
    assert merge_api_entities(config) is config


def test_saved_entities_load_back_and_leave_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "data" / STORE_FILE
    entities = ApiEntities([{"name": "ios", "write_key": "x" * 43}], [lambda_destination()])
    save_entities(path, entities)
    save_entities(path, entities)
    assert load_entities(path) == entities
    assert [p.name for p in path.parent.iterdir()] == [STORE_FILE]


def test_merge_adds_api_entities_after_the_files(tmp_path: Path) -> None:
    config = file_config(tmp_path)
    save_entities(
        tmp_path / "data" / STORE_FILE,
        ApiEntities([{"name": "ios", "write_key": "x" * 43}], [lambda_destination() | {"sources": ["ios"]}]),
    )
    merged = merge_api_entities(config)
    assert [s.name for s in merged.sources] == ["web", "ios"]
    assert [d.name for d in merged.destinations] == ["file-dest", "api-dest"]


def test_the_file_wins_a_name_and_the_store_forgets_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / STORE_FILE
    save_entities(path, ApiEntities([{"name": "web", "write_key": "y" * 43}], [lambda_destination("file-dest")]))
    merged = merge_api_entities(file_config(tmp_path))
    assert merged.sources[0].write_key.get_secret_value() != "y" * 43
    assert len(merged.destinations) == 1 and merged.destinations[0].settings.lambda_ == "my-fn"
    assert load_entities(path) == ApiEntities()


def test_a_corrupt_or_unfitting_store_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / STORE_FILE
    path.parent.mkdir(parents=True)
    path.write_text("{half", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        merge_api_entities(file_config(tmp_path))
    assert err.value.path == str(path)
    path.write_text(
        json.dumps({"version": 1, "sources": [], "destinations": [lambda_destination() | {"sources": ["gone"]}]}),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="unknown source 'gone'") as err:
        merge_api_entities(file_config(tmp_path))
    assert err.value.path == str(path)
