"""The one exception tree of eventrelay.

    EventRelayError
    ├── ConfigError                 a configuration value is wrong (names the field path)
    │   └── ExpressionError         a filter expression (FQL) does not parse (position, what was expected)
    ├── IngestError                 a Tracking API request is refused (HTTP 4xx; names field/limit)
    │   ├── AuthError               unknown or missing write key (401)
    │   └── PayloadError            malformed body, limit exceeded, missing field (400)
    ├── ReplayError                 a replay cannot be made, found or changed (status: 404 or 409)
    ├── StorageError                the queue or delivery log failed
    │   ├── QueueFull               the store is over its bound (429 + Retry-After)
    │   └── DiskFull                the disk refused a write (503)
    └── DestinationError            talking to a destination failed at the boundary
        ├── TransportError          no (complete) HTTP answer: refused, reset, TLS, malformed
        └── AwsError                a botocore/transport error, wrapped (carries the AWS error code)

Lower-level errors (sqlite3, botocore, aiohttp, nats) are translated at the boundary
with ``raise ... from exc`` so callers only ever catch these.
"""

from __future__ import annotations


class EventRelayError(Exception):
    """Base of every error eventrelay raises on purpose."""


class ConfigError(EventRelayError):
    """A configuration value is wrong. ``path`` is the dotted field path, e.g. ``destinations[0].settings.lambda``."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ConfigErrors(ConfigError):
    """Several configuration errors found at once."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        EventRelayError.__init__(self, "\n".join(str(e) for e in errors))
        self.path = errors[0].path if errors else ""
        self.message = str(self)


class ExpressionError(ConfigError):
    """A filter expression (the FQL subset of ``filters/``) does not parse.

    ``position`` is the 1-based character where the problem is, ``expected`` what would have been
    valid there and ``found`` what was there instead ("the end" past the last character). The
    field path is the configuration's (``destinations[0].filters[2].if``), or empty."""

    def __init__(self, position: int, expected: str, found: str, path: str = "") -> None:
        self.position = position
        self.expected = expected
        self.found = found
        super().__init__(path, f"at character {position}: expected {expected}, found {found}")


class IngestError(EventRelayError):
    """A Tracking API request is refused. ``status`` is the HTTP status to answer."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, limit: str | None = None) -> None:
        self.message = message
        self.field = field
        self.limit = limit
        super().__init__(message)


class AuthError(IngestError):
    status = 401
    code = "unauthorized"


class PayloadError(IngestError):
    status = 400
    code = "invalid_payload"


class ReplayError(EventRelayError):
    """A replay cannot be made (no such destination, the archive is off), found or changed.
    ``status`` is the HTTP status the admin API answers with."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        self.status = status
        super().__init__(message)


class StorageError(EventRelayError):
    """The queue or the delivery log failed."""


class QueueFull(StorageError):
    """The store holds as many events as its bound allows: answer 429 with Retry-After."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class DiskFull(StorageError):
    """The disk refused a write; nothing new is accepted until space returns (503)."""

    def __init__(self, message: str, retry_after: float = 10.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class DestinationError(EventRelayError):
    """Talking to a destination failed at the boundary."""


class TransportError(DestinationError):
    """No complete HTTP answer came (eventrelay's HTTP client). ``answered``: some of an answer
    arrived before the failure, so the request reached the server."""

    answered = False


class AwsError(DestinationError):
    """A wrapped botocore/transport error. ``code`` is the AWS error code when one was returned."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        self.code = code
        self.status = status
        super().__init__(message)
