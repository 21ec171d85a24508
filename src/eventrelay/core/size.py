"""Sizes written as ``2GB``, ``500MB``, ``64KB``, ``1GiB`` (or a number of bytes).

KB, MB, GB and TB are powers of 1000, KiB, MiB, GiB and TiB powers of 1024, as disks and
JetStream's ``max_bytes`` count them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> int:
    """Bytes from ``value``; raises ``ValueError`` naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("a size like 500MB or 2GB is required")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a size must not be negative")
        return int(value)
    match = _PATTERN.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size like 64KB, 500MB, 2GB or 1GiB")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def format_size(count: int) -> str:
    """``count`` bytes for people: ``1.5 GB``, ``320 KB``, ``12 B``."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


Size = Annotated[int, BeforeValidator(parse_size)]
