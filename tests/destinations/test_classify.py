"""Classification by AWS error code, for every code DESIGN.md section 5 lists (pure unit tests)."""

from __future__ import annotations

import pytest

from eventrelay.core.outcome import Category, Verdict
from eventrelay.destinations.aws_lambda.classify import CONNECTION_FAILED, NO_CREDENTIALS, TIMED_OUT, classify

D, E, T, AD, IC, TH, AE, C = (
    Category.DELIVERED,
    Category.EXECUTION_ERROR,
    Category.TIMEOUT,
    Category.ACCESS_DENIED,
    Category.INVALID_CREDENTIALS,
    Category.THROTTLED,
    Category.AWS_ERROR,
    Category.CONFIGURATION,
)


@pytest.mark.parametrize(
    ("status", "code", "function_error", "category", "verdict"),
    [
        (200, None, None, D, Verdict.SUCCESS),
        (202, None, None, D, Verdict.SUCCESS),  # Event
        (204, None, None, D, Verdict.SUCCESS),  # DryRun
        (200, None, "Unhandled", E, Verdict.RETRY),
        (200, None, "Handled", E, Verdict.RETRY),
        (None, TIMED_OUT, None, T, Verdict.RETRY),
        (None, CONNECTION_FAILED, None, AE, Verdict.RETRY),
        (403, "AccessDenied", None, AD, Verdict.BACKOFF_DESTINATION),  # STS
        (403, "AccessDeniedException", None, AD, Verdict.BACKOFF_DESTINATION),  # Lambda
        (403, "InvalidClientTokenId", None, IC, Verdict.BACKOFF_DESTINATION),
        (403, "SignatureDoesNotMatch", None, IC, Verdict.BACKOFF_DESTINATION),
        (403, "ExpiredToken", None, IC, Verdict.BACKOFF_DESTINATION),
        (403, "UnrecognizedClientException", None, IC, Verdict.BACKOFF_DESTINATION),
        (403, "ExpiredTokenException", None, IC, Verdict.BACKOFF_DESTINATION),
        (403, "InvalidSignatureException", None, IC, Verdict.BACKOFF_DESTINATION),
        (400, "RequestExpired", None, IC, Verdict.BACKOFF_DESTINATION),
        (None, NO_CREDENTIALS, None, IC, Verdict.BACKOFF_DESTINATION),
        (429, "TooManyRequestsException", None, TH, Verdict.RETRY),
        (400, "ThrottlingException", None, TH, Verdict.RETRY),
        (400, "Throttling", None, TH, Verdict.RETRY),  # STS spells it so
        (500, "ServiceException", None, AE, Verdict.RETRY),
        (502, "ResourceNotReadyException", None, AE, Verdict.RETRY),
        (502, "EC2ThrottledException", None, AE, Verdict.RETRY),
        (502, "EC2UnexpectedException", None, AE, Verdict.RETRY),
        (502, "ENILimitReachedException", None, AE, Verdict.RETRY),
        (502, "SubnetIPAddressLimitReachedException", None, AE, Verdict.RETRY),
        (503, "ServiceUnavailableException", None, AE, Verdict.RETRY),
        (503, None, None, AE, Verdict.RETRY),
        (408, "RequestTimeout", None, AE, Verdict.RETRY),
        (409, "ResourceConflictException", None, AE, Verdict.RETRY),
        (404, "ResourceNotFoundException", None, C, Verdict.DISCARD),
        (400, "InvalidRequestContentException", None, C, Verdict.DISCARD),
        (400, "InvalidParameterValueException", None, C, Verdict.DISCARD),
        (400, "SomeOtherValidationException", None, C, Verdict.DISCARD),
        (413, "RequestTooLargeException", None, C, Verdict.DISCARD),
        (413, "RequestEntityTooLargeException", None, C, Verdict.DISCARD),
        (415, "UnsupportedMediaTypeException", None, C, Verdict.DISCARD),
        (502, "KMSAccessDeniedException", None, C, Verdict.DISCARD),
        (502, "KMSDisabledException", None, C, Verdict.DISCARD),
        (502, "KMSInvalidStateException", None, C, Verdict.DISCARD),
        (502, "KMSNotFoundException", None, C, Verdict.DISCARD),
        (502, "InvalidSubnetIDException", None, C, Verdict.DISCARD),
        (502, "InvalidSecurityGroupIDException", None, C, Verdict.DISCARD),
        (502, "InvalidZipFileException", None, C, Verdict.DISCARD),
        (502, "InvalidRuntimeException", None, C, Verdict.DISCARD),
        (502, "EC2AccessDeniedException", None, C, Verdict.DISCARD),
        # codes nobody documented fall back on the status
        (429, None, None, TH, Verdict.RETRY),
        (403, "SomethingNew", None, AD, Verdict.BACKOFF_DESTINATION),
        (404, None, None, C, Verdict.DISCARD),
        (500, "SomethingNew", None, AE, Verdict.RETRY),
        (502, "SomethingNew", None, AE, Verdict.RETRY),
    ],
)
def test_classification(
    status: int | None, code: str | None, function_error: str | None, category: Category, verdict: Verdict
) -> None:
    assert classify(status, code, function_error) == (category, verdict)


def test_an_execution_error_is_classified_retry_and_the_delivery_policy_decides() -> None:
    # whether it is retried is delivery.retry_execution_errors, applied in delivery/decide.py only
    # (tests/delivery/test_decide.py: test_execution_error_fails_at_once_when_not_retried)
    assert classify(200, None, "Unhandled") == (E, Verdict.RETRY)
    assert classify(200, None, None) == (D, Verdict.SUCCESS)
