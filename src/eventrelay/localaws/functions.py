"""The local function registry: name -> handler, timeout, versions and aliases (from config).

A qualifier resolves as Lambda resolves it: none or ``$LATEST`` -> ``$LATEST``; a declared version ->
itself; a declared alias -> its version; anything else is unknown (404 ResourceNotFoundException).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from eventrelay.config.model import LocalAws, LocalAwsFunction
from eventrelay.destinations.aws_lambda.function_name import FunctionRef, parse_function_name

LATEST = "$LATEST"
AUTO_HANDLER = re.compile(r"^(async\s+)?def\s+handler\s*\(", re.MULTILINE)  # auto-registered entry point
AUTO_NAME = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")  # file stems usable as function names
MAX_RUNTIME_PROCESSES = 64  # LocalAwsFunction.concurrency's own bound


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    handler: str
    """``module.function`` inside ``code_dir`` (``/`` in the module part for subfolders)."""
    code_dir: Path
    timeout: float
    concurrency: int
    versions: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    """Synchronous invocations in flight at most (all versions together, as Lambda counts); None: no limit."""
    throttle_retry_after: float | None = None
    """Retry-After (seconds) of the 429 answered beyond ``reserved_concurrency``."""

    def resolve(self, qualifier: str | None) -> str | None:
        """The version a qualifier designates, or None when this function has no such qualifier."""
        if qualifier in (None, LATEST):
            return LATEST
        if qualifier in self.versions:
            return qualifier
        return self.aliases.get(qualifier or "")


@dataclass(frozen=True, slots=True)
class Target:
    """One resolved invoke target."""

    spec: FunctionSpec
    qualifier: str | None
    version: str
    arn: str
    """The function ARN, with the qualifier when the caller gave one (``context.invoked_function_arn``)."""


class FunctionRegistry:
    def __init__(self, functions: dict[str, FunctionSpec], region: str, account: str) -> None:
        self.functions = functions
        self.region = region
        self.account = account

    @classmethod
    def from_config(cls, local: LocalAws, base_dir: Path | None = None) -> FunctionRegistry:
        code_dir = Path(local.functions_dir)
        if base_dir is not None and not code_dir.is_absolute():
            code_dir = base_dir / code_dir
        code_dir = code_dir.resolve()
        declared = local.functions or _discover(code_dir)
        specs = {name: _spec(name, fn, code_dir) for name, fn in declared.items()}
        return cls(specs, local.region, local.account_id)

    def arn(self, name: str, qualifier: str | None = None) -> str:
        base = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{base}:{qualifier}" if qualifier else base

    def parse(self, function_name: str) -> FunctionRef:
        """Parse the path's FunctionName; ValueError when it is not a Lambda function name or ARN."""
        return parse_function_name(function_name)

    def lookup(self, ref: FunctionRef, qualifier: str | None) -> Target | None:
        """The target, or None when the function, its account/region or the qualifier is unknown here."""
        if ref.account not in (None, self.account) or ref.region not in (None, self.region):
            return None
        spec = self.functions.get(ref.name)
        if spec is None:
            return None
        version = spec.resolve(qualifier)
        if version is None:
            return None
        return Target(spec, qualifier, version, self.arn(spec.name, qualifier))


def _spec(name: str, fn: LocalAwsFunction, code_dir: Path) -> FunctionSpec:
    concurrency = fn.concurrency
    if fn.reserved_concurrency and "concurrency" not in fn.model_fields_set:
        concurrency = min(fn.reserved_concurrency, MAX_RUNTIME_PROCESSES)  # every admitted invocation runs at once
    return FunctionSpec(
        name=name,
        handler=fn.handler,
        code_dir=code_dir,
        timeout=fn.timeout,
        concurrency=concurrency,
        versions=tuple(fn.versions),
        aliases=dict(fn.aliases),
        reserved_concurrency=fn.reserved_concurrency,
        throttle_retry_after=fn.throttle_retry_after,
    )


def _discover(code_dir: Path) -> dict[str, LocalAwsFunction]:
    """Every ``*.py`` in the folder that defines ``handler`` becomes a function named after the file."""
    found: dict[str, LocalAwsFunction] = {}
    if not code_dir.is_dir():
        return found
    for path in sorted(code_dir.glob("*.py")):
        if AUTO_NAME.match(path.stem) and AUTO_HANDLER.search(path.read_text(encoding="utf-8", errors="replace")):
            found[path.stem] = LocalAwsFunction(handler=f"{path.stem}.handler")
    return found
