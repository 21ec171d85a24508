"""Render IAM documents and templates as JSON or YAML.

YAML uses CloudFormation's short forms (``!Ref X``, ``!GetAtt Role.Arn``), written from the long forms
the builders produce, so one dict renders both ways.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml

Format = Literal["json", "yaml"]


class _Tagged:
    def __init__(self, tag: str, value: str) -> None:
        self.tag = tag
        self.value = value


class _Dumper(yaml.SafeDumper):
    pass


def _represent_tagged(dumper: yaml.SafeDumper, data: _Tagged) -> yaml.Node:
    return dumper.represent_scalar(data.tag, data.value)


_Dumper.add_representer(_Tagged, _represent_tagged)


def render(document: dict[str, Any], fmt: Format = "json") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    return yaml.dump(_short_forms(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def _short_forms(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "Ref" in value and isinstance(value["Ref"], str):
            return _Tagged("!Ref", value["Ref"])
        if len(value) == 1 and "Fn::GetAtt" in value and isinstance(value["Fn::GetAtt"], list):
            return _Tagged("!GetAtt", ".".join(value["Fn::GetAtt"]))
        return {k: _short_forms(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short_forms(v) for v in value]
    return value
