"""Drop or keep property paths of an event, nested paths included (``context.device.id``).

Both return a new event and leave the given one untouched; only the objects along a changed path
are copied (an event's untouched parts are shared, not deep-copied).

- ``drop_paths``: each path is removed where it exists; a path that runs through a missing key or
  a non-object changes nothing.
- ``allow_paths``: for each object the paths name (their first segment: ``properties``, ``traits``,
  ``context``, ...), only the named paths inside it are kept; objects no path names are untouched.
  ``properties.address.city`` keeps ``properties: {address: {city: ...}}``; a named object that is
  not an object in the event is emptied (nothing in it was allowed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PropertyPath = tuple[str, ...]  # ("properties", "email") for properties.email; at least two segments


def split_path(text: str) -> PropertyPath:
    """``"context.device.id"`` -> ``("context", "device", "id")``."""
    return tuple(text.split("."))


def drop_paths(event: dict[str, Any], paths: Sequence[PropertyPath]) -> dict[str, Any]:
    """``event`` without the values at ``paths``."""
    out = event
    for path in paths:
        out = _without(out, path)
    return out


def _without(obj: dict[str, Any], path: PropertyPath) -> dict[str, Any]:
    head, rest = path[0], path[1:]
    if head not in obj:
        return obj
    if not rest:
        copy = dict(obj)
        del copy[head]
        return copy
    child = obj[head]
    if not isinstance(child, dict):
        return obj
    changed = _without(child, rest)
    if changed is child:
        return obj
    return {**obj, head: changed}


def allow_paths(event: dict[str, Any], paths: Sequence[PropertyPath]) -> dict[str, Any]:
    """``event`` with each object named by ``paths`` reduced to the paths inside it."""
    tree = _tree([p for p in paths if len(p) >= 2])
    out = dict(event)
    for root, allowed in tree.items():
        if root in out and allowed is not None:  # None: a one-segment path, never given (see above)
            value = out[root]
            out[root] = _pick(value, allowed) if isinstance(value, dict) else {}
    return out


# A tree of allowed keys: key -> subtree, where ``None`` keeps the whole value under the key.
_Tree = dict[str, "_Tree | None"]


def _tree(paths: Sequence[PropertyPath]) -> _Tree:
    tree: _Tree = {}
    for path in paths:
        node = tree
        for part in path[:-1]:
            child = node.get(part, {})
            if child is None:  # a shorter path already keeps all of this
                break
            node[part] = child
            node = child
        else:
            node[path[-1]] = None
    return tree


def _pick(obj: dict[str, Any], tree: _Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        if key not in obj:
            continue
        value = obj[key]
        if sub is None:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = _pick(value, sub)
    return out
