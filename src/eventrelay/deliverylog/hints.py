"""What each outcome category means, and what to do about it (the error table of the page and the API)."""

from __future__ import annotations

from dataclasses import dataclass

from eventrelay.core.outcome import HUMAN_NAMES, Category

DEFAULT_TIMEOUT_S = 5.0  # the attempt timeout when the destination does not set one (DESIGN.md section 5)


@dataclass(frozen=True, slots=True)
class Hint:
    category: Category
    name: str  # the human name the page shows
    description: str
    fix: str


_DESCRIPTIONS: dict[Category, tuple[str, str]] = {
    Category.DELIVERED: ("The function ran and returned without an error.", "Nothing to fix."),
    Category.EXECUTION_ERROR: (
        "The function was invoked and raised an error (Lambda answered with X-Amz-Function-Error).",
        "Your function raised; see the log tail in the samples (set log_type: Tail on the destination to "
        "keep it), fix the handler, then re-drive the failed events.",
    ),
    Category.TIMEOUT: (
        "No answer from Lambda within the attempt timeout.",
        "The function took longer than the attempt timeout ({timeout}); make it faster, raise the "
        "destination's delivery.timeout, or check the function's own timeout and cold starts.",
    ),
    Category.ACCESS_DENIED: (
        "AWS refused access: assuming the role (STS AccessDenied) or invoking the function "
        "(AccessDeniedException) was not allowed.",
        "The role's trust relationship must allow eventrelay's principal with sts:ExternalId = "
        "{external_id}, and the role's policy must allow lambda:InvokeFunction on the function "
        "(qualifier included). `eventrelay aws trust-policy` and `eventrelay aws policy` print both.",
    ),
    Category.INVALID_CREDENTIALS: (
        "AWS did not accept the credentials (InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken, "
        "UnrecognizedClientException).",
        "Check eventrelay's base AWS credentials (environment, profile or instance role): they must be "
        "valid, unexpired and for the right partition; the clock must be correct for signing.",
    ),
    Category.THROTTLED: (
        "Lambda throttled the invoke (TooManyRequestsException / ThrottlingException); retried with backoff.",
        "Raise the function's reserved concurrency or the account's concurrency limit, or lower the "
        "destination's delivery.concurrency.",
    ),
    Category.AWS_ERROR: (
        "A transient AWS or network error (5xx, connection refused or reset, DNS failure); retried.",
        "Usually passes on its own; if it persists check the region, the endpoint and the network path to AWS.",
    ),
    Category.CONFIGURATION: (
        "The request cannot succeed as configured (function not found, invalid parameter, payload too "
        "large); discarded with the reason, not retried.",
        "Check the destination's function name, qualifier (version/alias) and region, and the event "
        "size; fix the setting, then re-drive.",
    ),
    Category.FILTERED: (
        "A destination filter (only or filters in the destination's settings) kept the event from the "
        "destination: it was not sent. Not an error, never retried.",
        "Nothing to fix; if the event should have been sent, change the filter named in the record.",
    ),
}


def hint(category: Category | str, *, external_id: str | None = None, timeout_s: float | None = None) -> Hint:
    """The name, description and fix hint of ``category``, with the workspace's values filled in."""
    cat = Category(category)
    description, fix = _DESCRIPTIONS[cat]
    shown_id = external_id or "<your workspace id>"
    timeout = f"{timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S:g} s"
    return Hint(cat, HUMAN_NAMES[cat], description, fix.format(external_id=shown_id, timeout=timeout))
