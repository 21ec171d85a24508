"""A destination's filters in the configuration: ``only`` and the ordered ``filters`` list.

    only: 'type = "track"'                                   # only send events that match
    filters:
      - {if: 'event = "Debug"', drop: true}                  # drop the events that match
      - {if: 'type = "page"', sample: 0.1}                   # keep 10% of them (by messageId)
      - {if: 'true', drop_properties: [context.ip, traits.address.street]}
      - {if: 'event = "Signed Up"', allow_properties: [properties.plan, properties.seats]}

Each condition is an FQL expression (``filters/``), parsed here at config time: a syntax error is
reported at its field path (``destinations[0].filters[2].if``) with the position and what was
expected. ``if`` may be left out: the filter then applies to every event.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from eventrelay.core.errors import ExpressionError
from eventrelay.filters.fql_parser import parse
from eventrelay.filters.properties import split_path
from eventrelay.filters.rules import Action, AllowProperties, Drop, DropProperties, Filters, Rule, Sample

ACTIONS = ("drop", "sample", "drop_properties", "allow_properties")


def _parses(text: str) -> str:
    try:
        parse(text)
    except ExpressionError as exc:
        raise ValueError(exc.message) from None
    return text


def _inside_an_object(text: str) -> str:
    parts = text.split(".")
    if len(parts) < 2 or not all(parts):
        raise ValueError(
            f"{text!r}: name a path inside an object of the event, segments joined by dots "
            "(properties.email, context.ip, traits.address.street)"
        )
    return text


Fql = Annotated[str, AfterValidator(_parses)]
"""An FQL condition, checked to parse."""
PropertyPathText = Annotated[str, AfterValidator(_inside_an_object)]


class Filter(BaseModel):
    """One entry of a destination's ``filters``: a condition and exactly one action."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    condition: Fql = Field(default="true", alias="if")
    """The FQL condition the action applies to. Default ``true`` (every event)."""
    drop: Literal[True] | None = None
    """Do not send the events that match."""
    sample: float | None = Field(default=None, gt=0, le=1)
    """Send this share of the events that match (0.1: one in ten), chosen by messageId."""
    drop_properties: list[PropertyPathText] | None = Field(default=None, min_length=1)
    """Remove these paths (nested ones too) from the events that match."""
    allow_properties: list[PropertyPathText] | None = Field(default=None, min_length=1)
    """Keep only these paths in the objects they name (properties, traits, context, ...)."""

    @model_validator(mode="after")
    def _one_action(self) -> Filter:
        values = (self.drop, self.sample, self.drop_properties, self.allow_properties)
        given = [a for a, v in zip(ACTIONS, values, strict=True) if v is not None]
        if len(given) != 1:
            shown = ", ".join(given) if given else "none"
            raise ValueError(f"a filter takes exactly one of {', '.join(ACTIONS)} (given: {shown})")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_actions(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}

    def rule(self, name: str) -> Rule:
        """This filter as the rule ``filters/rules.py`` applies, named ``name`` (``filters[2]``)."""
        return Rule(name, parse(self.condition), self._action())

    def _action(self) -> Action:
        if self.sample is not None:
            return Sample(self.sample)
        if self.drop_properties is not None:
            return DropProperties(tuple(split_path(p) for p in self.drop_properties))
        if self.allow_properties is not None:
            return AllowProperties(tuple(split_path(p) for p in self.allow_properties))
        return Drop()


def build_filters(only: str | None, filters: list[Filter]) -> Filters:
    """A destination's filters, compiled for delivery (``only`` and ``filters`` as validated)."""
    return Filters(None if only is None else parse(only), [f.rule(f"filters[{i}]") for i, f in enumerate(filters)])
