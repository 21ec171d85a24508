"""The connection check of a destination that can test its connection (``CheckableDestination``;
for ``aws_lambda``: assume the role and ``DryRun``-invoke every function).

Shared by ``eventrelay check`` and ``POST /api/v1/destinations/{name}/check``. Each function's result
carries its category and, on failure, the fix hint the Event Delivery page shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventrelay.config.model import Config
from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.core.outcome import Outcome
from eventrelay.deliverylog.hints import hint
from eventrelay.destinations.base import CheckableDestination

CHECK_TIMEOUT = 10.0  # seconds per function: AssumeRole + DryRun, generous for a cold credential chain


@dataclass(frozen=True, slots=True)
class FunctionCheck:
    function: str
    outcome: Outcome
    external_id: str | None

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    def as_dict(self) -> dict[str, Any]:
        o = self.outcome
        out: dict[str, Any] = {
            "function": self.function,
            "ok": self.ok,
            "category": o.category.value,
            "status_code": o.status_code,
            "error_type": o.error_type,
            "error_message": o.error_message,
            "latency_ms": round(o.latency_ms, 1),
        }
        if not self.ok:
            h = hint(o.category, external_id=self.external_id)
            out["hint"] = {"name": h.name, "description": h.description, "fix": h.fix}
        return out


def check_source(config: Config, dest: DestinationConfig, source: str | None) -> str | None:
    """The source whose id is the External ID when no workspace id is configured (first routed one)."""
    if config.workspace is not None or source:
        return source
    names = dest.sources if dest.sources is not None else [s.name for s in config.sources]
    return names[0] if names else None


async def run_check(
    instance: CheckableDestination, config: Config, dest: DestinationConfig, source: str | None = None
) -> list[FunctionCheck]:
    """Check every function (target) ``instance`` uses."""
    src = check_source(config, dest, source)
    results = await instance.check(source=src, timeout=CHECK_TIMEOUT)
    return [FunctionCheck(function, outcome, config.external_id_for(src)) for function, outcome in results]


def check_report(name: str, results: list[FunctionCheck]) -> dict[str, Any]:
    return {
        "destination": name,
        "ok": all(r.ok for r in results),
        "functions": [r.as_dict() for r in results],
    }
