"""Read a YAML configuration file: substitute ``${ENV}``, validate, report errors by field path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eventrelay.config.model import Config
from eventrelay.core.errors import ConfigError, ConfigErrors

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate the file at ``path``. Raises ``ConfigError`` (or ``ConfigErrors``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read configuration file {path}: {exc.strerror}") from exc
    return parse_config(text, environ, base_dir=Path(path).resolve().parent)


def parse_config(text: str, environ: Mapping[str, str] | None = None, base_dir: Path | None = None) -> Config:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("", "the configuration must be a mapping at the top level")
    data = substitute_env(raw, os.environ if environ is None else environ, "")
    return validate_config(data, base_dir)


def validate_config(data: dict[str, Any], base_dir: Path | None = None) -> Config:
    try:
        config = Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigErrors([ConfigError(format_loc(e["loc"]), _message(e)) for e in exc.errors()]) from None
    return config


def substitute_env(value: Any, environ: Mapping[str, str], path: str) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; a missing variable is an error."""
    if isinstance(value, dict):
        return {k: substitute_env(v, environ, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(path, f"environment variable {name} is not set")

        return _ENV.sub(repl, value)
    return value


def format_loc(loc: tuple[int | str, ...] | list[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = _join(out, part)
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (not allowed here)"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")
