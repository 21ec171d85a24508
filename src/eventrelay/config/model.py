"""The configuration model (DESIGN.md section 2). Unknown keys are refused everywhere."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    SerializeAsAny,
    Tag,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from eventrelay.config.archive import Archive
from eventrelay.config.filters import Filter, Fql, build_filters
from eventrelay.core.duration import Duration
from eventrelay.core.external_id import external_id
from eventrelay.core.size import Size
from eventrelay.destinations import registry
from eventrelay.destinations.kind import DestinationType
from eventrelay.filters.rules import Filters

MIN_SECRET_LENGTH = 16  # write keys and admin tokens: shorter ones are guessable
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # source/destination names appear in URLs and metrics


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Workspace(Strict):
    id: str = Field(min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$")
    """The workspace id; also the External ID used to assume every destination's role."""


DEFAULT_DATA_PATH = "./eventrelay-data"
DEFAULT_MAX_EVENTS = 2_000_000  # waiting jobs: ~2.4 GB of SQLite queue at ~1.2 KB per job
# Room kept under new events (storage/space.py): the queue's WAL at its usual bound (16 MB) and
# the copy a checkpoint makes of it, the delivery log's WAL (4 MB), the space reserve (8 MB) and
# margin for the records of the attempts that drain the backlog meanwhile.
DEFAULT_MIN_FREE_SPACE = 64 * 1024 * 1024


class _StorageBase(Strict):
    path: str = DEFAULT_DATA_PATH
    """This process's data directory (sqlite: queue.db, deliverylog.db; jetstream: the delivery
    log's local index; both: the Config API store). Default ./eventrelay-data."""
    max_events: int = Field(default=DEFAULT_MAX_EVENTS, ge=1)
    """Bound on jobs waiting in the store; over it ingest answers 429 with Retry-After. Default 2,000,000."""


class SqliteStorage(_StorageBase):
    """``storage: {backend: sqlite, path, max_events}``: the embedded default, one directory."""

    backend: Literal["sqlite"] = "sqlite"
    min_free_space: Size = DEFAULT_MIN_FREE_SPACE
    """New events are refused (503 disk_full, Retry-After) while less than this is free on the
    data directory's disk (the queue's own free pages count): delivery, which needs a little
    room for every ack and attempt record, goes on and drains the backlog; the archive's oldest
    events give way first. Default 64MiB."""
    integrity_check: bool = True
    """Run SQLite's quick_check on queue.db and deliverylog.db at start (about a second per GB,
    stopped after 60 s) and refuse to start on a damaged file. Turn off for very large stores.
    Default true."""


class JetStreamStorage(_StorageBase):
    """``storage: {backend: jetstream, servers, replicas, stream, max_events, path}``: many
    processes sharing a JetStream cluster."""

    backend: Literal["jetstream"]
    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    """NATS server URLs."""
    replicas: int = Field(default=1, ge=1, le=5)
    """Stream replicas. Default 1 (single server); use 3 in a cluster."""
    stream: str = "EVENTRELAY"
    """Stream name prefix. Default EVENTRELAY."""


STORAGE_BACKENDS: dict[str, type[_StorageBase]] = {"sqlite": SqliteStorage, "jetstream": JetStreamStorage}


def _backend_of(value: Any) -> str:
    """The union's tag: ``backend``, sqlite when absent (a non-mapping fails as sqlite's)."""
    if isinstance(value, dict):
        return str(value.get("backend", "sqlite"))
    if isinstance(value, SqliteStorage | JetStreamStorage):
        return value.backend
    return "sqlite"


Storage = Annotated[
    Annotated[SqliteStorage, Tag("sqlite")] | Annotated[JetStreamStorage, Tag("jetstream")],
    Discriminator(_backend_of),
]
"""``storage``: one backend's settings; keys of another backend are refused, naming it."""


def _storage_errors(exc: ValidationError, value: Any) -> ValidationError:
    """``exc`` as the file names it: ``storage.servers``, not ``storage.sqlite.servers`` (the
    union's tag dropped), an unknown backend at ``storage.backend``, and a key of another
    backend said to be that backend's."""
    backend = _backend_of(value)
    errors: list[InitErrorDetails] = []
    for error in exc.errors():
        loc, kind = error["loc"], error["type"]
        if loc and loc[0] in STORAGE_BACKENDS:
            loc = loc[1:]
        detail: InitErrorDetails = {"type": kind, "loc": loc, "input": error["input"]}
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        owners = [name for name, model in STORAGE_BACKENDS.items() if loc and loc[0] in model.model_fields]
        if kind == "extra_forbidden" and owners:
            detail["type"] = PydanticCustomError(
                "other_backend",
                "belongs to backend {owner}, not {backend} (storage.backend: {owner} to use it)",
                {"owner": " or ".join(owners), "backend": backend},
            )
        elif kind == "union_tag_invalid":
            detail["loc"] = ("backend",)
            detail["type"] = PydanticCustomError(
                "unknown_backend",
                "unknown backend '{backend}'; one of: {known}",
                {"backend": backend, "known": ", ".join(STORAGE_BACKENDS)},
            )
        errors.append(detail)
    return ValidationError.from_exception_data(exc.title, errors)


class Admin(Strict):
    token: SecretStr | None = None
    """Bearer token of the admin API. When absent, one is generated at start and printed once."""
    metrics_require_token: bool = False
    """Require the token on /metrics too. Default false (Prometheus scrapers expect open metrics)."""
    endpoint_allow_list: list[str] = Field(default_factory=list)
    """Hosts (host or host:port) that an ``endpoint_url`` set through the Config API may name."""

    @field_validator("token")
    @classmethod
    def _token_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return v


class Ingest(Strict):
    dedup_window: Duration = 86400.0
    """messageId dedup window per workspace. Default 24h."""
    fast_path: bool = True
    """Answer plain event POSTs inside uvicorn's HTTP protocol, without ASGI (``ingest/fast_http.py``,
    ~30% less server CPU per event). The answers are the same either way; false sends every request
    through the ASGI app (to rule the fast path out, or after a uvicorn upgrade it does not know). Default true."""
    head_timeout: Duration = Field(default=10.0, gt=0, le=3600)
    """Time a connection has to send a complete request head (request line and headers), from when it
    opens or from the first byte of its next request; then it is closed. Default 10s."""
    body_timeout: Duration = Field(default=30.0, gt=0, le=3600)
    """Time a request has to send its body once its head is in; then it is answered 408 and closed. Default 30s."""
    keep_alive_timeout: Duration = Field(default=5.0, gt=0, le=3600)
    """An idle kept-alive connection is closed after this. Default 5s."""
    max_connections: int | None = Field(default=None, ge=1)
    """Open connections served at once; a new one beyond it is answered 503 (Retry-After) and closed,
    and a warning with the count is logged at most every 10 s. Default: the process's open-file
    limit minus 256 and the destinations' delivery concurrency (the descriptors the rest needs)."""
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")
    """The URL browsers reach the Tracking API at (``https://events.example.com``): the settings
    endpoint (``/v1/projects/{writeKey}/settings``) points analytics.js there. Default: none."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Without ``public_url``: the ``Host`` header values (``name``: any port, or ``name:port``) the
    settings endpoint may point browsers at; any other Host gets the address the request arrived on,
    so a forged Host is never copied into a cacheable answer. Default: none."""


class Source(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    write_key: SecretStr

    @field_validator("write_key")
    @classmethod
    def _key_length(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return v


class DeliveryPolicy(Strict):
    timeout: Duration = Field(default=5.0, gt=0, le=900)
    """Per-attempt timeout. Default 5s (as the hosted service)."""
    retry_window: Duration = Field(default=4 * 3600.0, ge=0)
    """How long after receipt an event is retried before it is marked failed. Default 4h."""
    max_attempts: int = Field(default=50, ge=1, le=10_000)
    """Attempt cap within the window. Default 50."""
    retry_execution_errors: bool = True
    """Retry when the function raised (Execution Error). Default true."""
    concurrency: int = Field(default=64, ge=1, le=10_000)
    """Attempts in flight for this destination. Default 64."""
    backoff_base: Duration = Field(default=2.0, gt=0)
    """First retry within this delay (full jitter, doubling). Default 2s."""
    backoff_cap: Duration = Field(default=300.0, gt=0)
    """Longest delay between attempts. Default 5m."""
    replay_share: float = Field(default=0.5, gt=0, le=1)
    """Share of ``concurrency`` a replay into this destination may use, so live traffic keeps
    flowing. Default 0.5 (half)."""


class Destination(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    type: str = "aws_lambda"
    """A destination type of ``destinations/registry.py``. Default aws_lambda."""
    enabled: bool = True
    sources: list[str] | None = None
    """Sources whose events go here. Default: every source."""
    settings: SerializeAsAny[BaseModel]
    """Validated with the settings model of ``type`` (for aws_lambda: DESIGN.md section 4)."""
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    ordering: Literal["none", "user"] = "none"
    """``user``: one user's events (``userId``, else ``anonymousId``) are delivered in the order
    they were received; an event being retried holds back only its user's later events, until it
    is delivered or ends failed (its own retry window and attempt cap). Default ``none``."""
    only: Fql | None = None
    """Send only the events that match this FQL condition (``config/filters.py``). Default: every event."""
    filters: list[Filter] = Field(default_factory=list)
    """Destination filters, applied in order after ``only``: drop, sample, drop_properties,
    allow_properties (``config/filters.py``). Default none."""

    @field_validator("type")
    @classmethod
    def _registered_type(cls, v: str) -> str:
        if registry.find(v) is None:
            raise ValueError(f"unknown destination type {v!r} (known: {', '.join(registry.names())})")
        return v

    @field_validator("settings", mode="before")
    @classmethod
    def _type_settings(cls, v: Any, info: ValidationInfo) -> Any:
        # Fields validate in order: ``type`` is in ``info.data`` once it is valid. The settings
        # model's own errors keep their field paths (``destinations[0].settings.region``).
        kind = registry.find(info.data["type"]) if "type" in info.data else None
        return v if kind is None else kind.settings_model.model_validate(v, context=info.context)

    @property
    def kind(self) -> DestinationType[Any]:
        """This destination's registered type."""
        return registry.get(self.type)

    def compiled_filters(self) -> Filters:
        """``only`` and ``filters`` compiled for delivery."""
        return build_filters(self.only, self.filters)


class LocalAwsFunction(Strict):
    handler: str = Field(pattern=r"^[A-Za-z_][\w./-]*\.[A-Za-z_]\w*$")
    """``file.function`` inside the functions folder."""
    timeout: Duration = Field(default=3.0, gt=0, le=900)
    versions: list[str] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=2, ge=1, le=64)
    """Runtime processes for the function (invocations beyond wait for one). Default 2; with
    ``reserved_concurrency`` and no ``concurrency``: that many (at most 64)."""
    reserved_concurrency: int | None = Field(default=None, ge=0, le=1000)
    """Lambda's reserved concurrency: synchronous invocations in flight beyond it are refused
    with 429 ``TooManyRequestsException`` (Reason ``ReservedFunctionConcurrentInvocationLimitExceeded``),
    as AWS does; ``GetFunctionConcurrency`` answers it. Default: none (not limited)."""
    throttle_retry_after: Duration | None = Field(default=None, ge=0)
    """``Retry-After`` (seconds) on those 429 answers. Default: none."""


class LocalAwsRole(Strict):
    trusted_principals: list[str] = Field(default_factory=lambda: ["*"])
    external_id: str | list[str] | None = None
    """The ``sts:ExternalId`` the trust policy requires (one or a list). None: the workspace id."""
    allow_invoke: list[str] = Field(default_factory=lambda: ["*"])
    """Function names or ARNs (``*`` wildcards) the role may invoke."""
    allow_get_concurrency: list[str] | None = None
    """Functions whose reserved concurrency the role may read (``lambda:GetFunctionConcurrency``,
    an optional grant). Default: the same as ``allow_invoke``; ``[]``: none."""


class LocalAws(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """Port of the local AWS endpoint; 0 picks a free one."""
    account_id: str = Field(default="123456789012", pattern=r"^\d{12}$")
    region: str = "us-west-2"
    functions_dir: str = "./functions"
    functions: dict[str, LocalAwsFunction] = Field(default_factory=dict)
    roles: dict[str, LocalAwsRole] = Field(default_factory=dict)
    """Role name -> trust and permission. Default: every destination's role, trusting anyone with the workspace id."""
    users: dict[str, SecretStr] = Field(default_factory=dict)
    """Base credentials (access key id -> secret) the endpoint verifies. Empty (default): any base access
    key may call STS unverified, as LocalStack does; set it to produce Invalid Credentials locally."""
    allow_base_credentials_invoke: bool = False
    """Let base (non-session) credentials call Invoke. Default false: Invoke needs an assumed role."""
    echo_logs: bool | None = None
    """Copy what handlers print to this process's stdout, prefixed with the function name. Default
    (unset): on under ``eventrelay serve`` and ``eventrelay localaws``, off in other commands (their
    stdout is their answer); false: never; true: always."""


class Config(Strict):
    workspace: Workspace | None = None
    storage: Storage = Field(default_factory=SqliteStorage)
    admin: Admin = Field(default_factory=Admin)
    ingest: Ingest = Field(default_factory=Ingest)
    sources: list[Source] = Field(default_factory=list)
    destinations: list[Destination] = Field(default_factory=list)
    localaws: LocalAws | None = None
    archive: Archive = Field(default_factory=Archive)

    @field_validator("storage", mode="wrap")
    @classmethod
    def _storage_paths(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> SqliteStorage | JetStreamStorage:
        try:
            storage: SqliteStorage | JetStreamStorage = handler(value)
        except ValidationError as exc:
            raise _storage_errors(exc, value) from None
        return storage

    @model_validator(mode="after")
    def _references(self) -> Config:
        names = [s.name for s in self.sources]
        _unique(names, "sources", "name")
        _unique([s.write_key.get_secret_value() for s in self.sources], "sources", "write_key")
        _unique([d.name for d in self.destinations], "destinations", "name")
        for i, dest in enumerate(self.destinations):
            for j, src in enumerate(dest.sources or []):
                if src not in names:
                    raise ValueError(f"destinations[{i}].sources[{j}]: unknown source {src!r}")
        return self

    def external_id_for(self, source: str | None) -> str | None:
        """The External ID for an event from ``source`` (``core.external_id``): the workspace id, else
        the source's id. ``None`` asks for the one every event shares: the workspace id, if any."""
        return external_id(self.workspace.id if self.workspace else None, source)


def _unique(values: list[str], section: str, key: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            shown = "(secret)" if key == "write_key" else repr(v)
            raise ValueError(f"{section}[{i}].{key}: duplicate value {shown}")
        seen.add(v)
