"""Persistence of the sources and destinations created through the Config API.

They live in ``api-entities.json`` in ``storage.path``, written atomically (temporary file, fsync,
rename, fsync of the directory) with mode 0600 since it holds write keys. At start,
``merge_api_entities`` adds them to the configuration read from the file; entities defined in the
file are managed by the file and win over a stored entity of the same name (which is then dropped
from the store, with a warning).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from eventrelay.config.load import validate_config
from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError, StorageError

STORE_FILE = "api-entities.json"
STORE_VERSION = 1  # bump when the file's shape changes
STORE_MODE = 0o600  # the file holds write keys: owner only

log = logging.getLogger("eventrelay.config")


@dataclass
class ApiEntities:
    """Entities created through the Config API, as they were given (validated) to it."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    destinations: list[dict[str, Any]] = field(default_factory=list)

    def source_names(self) -> set[str]:
        return {str(s["name"]) for s in self.sources}

    def destination_names(self) -> set[str]:
        return {str(d["name"]) for d in self.destinations}

    def copy(self) -> ApiEntities:
        return ApiEntities(json.loads(json.dumps(self.sources)), json.loads(json.dumps(self.destinations)))


def store_path(config: Config) -> Path:
    return Path(config.storage.path) / STORE_FILE


def load_entities(path: Path) -> ApiEntities:
    """The stored entities; none when the file does not exist yet."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ApiEntities()
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), f"cannot read the Config API store: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("version") != STORE_VERSION:
        raise ConfigError(str(path), f"not a Config API store of version {STORE_VERSION}")
    return ApiEntities(list(raw.get("sources", [])), list(raw.get("destinations", [])))


def save_entities(path: Path, entities: ApiEntities) -> None:
    """Write ``entities`` atomically and durably."""
    data = {"version": STORE_VERSION, "sources": entities.sources, "destinations": entities.destinations}
    text = json.dumps(data, indent=2, sort_keys=True)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{STORE_FILE}.", dir=path.parent)
        try:
            os.fchmod(fd, STORE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StorageError(f"cannot write the Config API store {path}: {exc.strerror}") from exc


def config_data(config: Config) -> dict[str, Any]:
    """``config`` as the plain data ``validate_config`` takes (secrets revealed; never log this)."""
    data: dict[str, Any] = _reveal(config.model_dump(mode="python", by_alias=True))
    return data


def merge_api_entities(config: Config, path: Path | None = None) -> Config:
    """``config`` (from the file) plus the entities created through the Config API.

    Raises ``ConfigError`` naming the store file when the stored entities no longer fit the file's
    configuration (e.g. a stored destination routes from a source the file no longer has).
    """
    path = path or store_path(config)
    entities = load_entities(path)
    if not entities.sources and not entities.destinations:
        return config
    file_sources = {s.name for s in config.sources}
    file_destinations = {d.name for d in config.destinations}
    kept = ApiEntities(
        [s for s in entities.sources if s.get("name") not in file_sources],
        [d for d in entities.destinations if d.get("name") not in file_destinations],
    )
    dropped = (entities.source_names() & file_sources) | (entities.destination_names() & file_destinations)
    if dropped:
        log.warning("the configuration file now defines %s; dropped from the Config API store", sorted(dropped))
        save_entities(path, kept)
    data = config_data(config)
    data["sources"] = [*data["sources"], *kept.sources]
    data["destinations"] = [*data["destinations"], *kept.destinations]
    try:
        return validate_config(data)
    except ConfigError as exc:
        raise ConfigError(str(path), f"entities created through the Config API do not fit the file: {exc}") from exc


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value
