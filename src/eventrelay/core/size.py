"""Sizes written as ``512KB``, ``64MB``, ``2GB`` (powers of 1024) or a number of bytes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> int:
    """Bytes from ``value``; raises ``ValueError`` naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("a size like 512KB, 64MB or 2GB is required")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a size must not be negative")
        return int(value)
    match = _PATTERN.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size like 512KB, 64MB or 2GB")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


ByteSize = Annotated[int, BeforeValidator(parse_size)]
