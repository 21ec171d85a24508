"""One destination's filters, applied in order to one event: kept (maybe changed) or filtered.

    only: COND                       filtered unless the event matches COND (checked first)
    {if: COND, drop: true}           filtered when it matches
    {if: COND, sample: R}            when it matches, kept for a share R of messageIds (0 < R <= 1),
                                     filtered otherwise; the same messageId always gets the same answer
    {if: COND, drop_properties: P}   when it matches, the paths P are removed (nested ones too)
    {if: COND, allow_properties: P}  when it matches, only the paths P are kept in the objects they name

Each condition sees the event as the filters before it left it (a dropped property is missing to
the filters after it). The first filter that filters the event out is the one reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventrelay.filters.evaluate import compile_expr
from eventrelay.filters.fql_ast import Expr, text
from eventrelay.filters.properties import PropertyPath, allow_paths, drop_paths

SAMPLE_HASH_BYTES = 8  # 64 bits of blake2b per messageId: uniform far beyond any sampling rate's precision
SAMPLE_SPACE = 1 << (8 * SAMPLE_HASH_BYTES)


@dataclass(frozen=True, slots=True)
class Drop:
    pass


@dataclass(frozen=True, slots=True)
class Sample:
    rate: float  # the share kept, 0 < rate <= 1


@dataclass(frozen=True, slots=True)
class DropProperties:
    paths: tuple[PropertyPath, ...]


@dataclass(frozen=True, slots=True)
class AllowProperties:
    paths: tuple[PropertyPath, ...]


Action = Drop | Sample | DropProperties | AllowProperties


@dataclass(frozen=True, slots=True)
class Rule:
    """One filter: ``name`` is where it is configured (``filters[2]``)."""

    name: str
    condition: Expr
    action: Action

    def describe(self) -> str:
        """``filters[2]: sample 0.1 if type = "track"``: how records name the filter."""
        action = self.action
        if isinstance(action, Drop):
            what = "drop"
        elif isinstance(action, Sample):
            what = f"sample {action.rate:g}"
        else:
            kind = "drop_properties" if isinstance(action, DropProperties) else "allow_properties"
            what = f"{kind} [{', '.join('.'.join(p) for p in action.paths)}]"
        return f"{self.name}: {what} if {text(self.condition)}"


@dataclass(frozen=True, slots=True)
class Kept:
    """The event goes on; ``changed``: a property filter changed it (send ``event``, re-encoded)."""

    event: dict[str, Any]
    changed: bool


@dataclass(frozen=True, slots=True)
class Filtered:
    """The event is not sent; ``by`` names the filter (``Rule.describe``, or ``only: COND``)."""

    by: str


def in_sample(message_id: str, rate: float) -> bool:
    """Whether ``message_id`` falls in the kept share ``rate``: a hash, so the answer never changes."""
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=SAMPLE_HASH_BYTES).digest()
    point: int = int.from_bytes(digest, "big")
    return point / SAMPLE_SPACE < rate


class Filters:
    """A destination's ``only`` and ``filters``, compiled once, applied to each event."""

    def __init__(self, only: Expr | None = None, rules: Sequence[Rule] = ()) -> None:
        self._only = None if only is None else (compile_expr(only), f"only: {text(only)}")
        self._rules = [(compile_expr(r.condition), r) for r in rules]

    @property
    def active(self) -> bool:
        """Whether there is anything to apply (an event passes through untouched otherwise)."""
        return self._only is not None or bool(self._rules)

    def apply(self, message_id: str, event: dict[str, Any]) -> Kept | Filtered:
        if self._only is not None and not self._only[0](event):
            return Filtered(self._only[1])
        changed = False
        for matches, rule in self._rules:
            if not matches(event):
                continue
            action = rule.action
            if isinstance(action, Drop) or (isinstance(action, Sample) and not in_sample(message_id, action.rate)):
                return Filtered(rule.describe())
            if isinstance(action, DropProperties):
                dropped = drop_paths(event, action.paths)
                event, changed = dropped, changed or dropped is not event
            elif isinstance(action, AllowProperties):
                event, changed = allow_paths(event, action.paths), True
        return Kept(event, changed)
