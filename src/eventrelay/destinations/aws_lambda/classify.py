"""AWS error code -> (category, verdict), exactly as DESIGN.md section 5 lists.

Classification is by AWS error code first (botocore retries every 5xx, including the 502s that
are configuration mistakes), then by HTTP status for codes nobody documented. Pure function:
no I/O, no state.

    delivered            200 without X-Amz-Function-Error, 202 (Event), 204 (DryRun)
    execution_error      200 with X-Amz-Function-Error               retry (delivery/decide.py
                                                                     applies retry_execution_errors)
    timeout              no answer in time                           retry
    aws_error            connection refused/reset/dropped, DNS; 500, 502 ResourceNotReady/
                         EC2Throttled/EC2Unexpected/ENI*, 503, 408, 409   retry
    access_denied        AccessDenied, AccessDeniedException         back off the destination
    invalid_credentials  InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken, ...
                         (the destination re-assumes once first)     back off the destination
    throttled            429 TooManyRequestsException, ThrottlingException   retry (Retry-After)
    configuration        404, 400s, 413, 415, 502 KMS*/Invalid*      discard with the reason
"""

from __future__ import annotations

from eventrelay.core.outcome import Category, Verdict

# Pseudo error codes for failures that have no AWS answer.
CONNECTION_FAILED = "ConnectionError"  # refused, reset, dropped mid-request, DNS failure
TIMED_OUT = "TimedOut"  # no complete answer within the attempt timeout
NO_CREDENTIALS = "NoCredentials"  # the standard chain found no base credentials
BAD_ANSWER = "UnparseableResponse"  # an answer that is not AWS's wire format (a proxy, a wrong endpoint)

ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
INVALID_CREDENTIALS_CODES = frozenset(
    {
        # STS (the base credentials) and Lambda (the assumed-role session)
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "RequestExpired",  # clock skew over 15 minutes
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "InvalidAccessKeyId",
        NO_CREDENTIALS,
    }
)
THROTTLED_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded"})
AWS_ERROR_CODES = frozenset(
    {
        CONNECTION_FAILED,
        BAD_ANSWER,
        "ServiceException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "ResourceNotReadyException",
        "EC2ThrottledException",
        "EC2UnexpectedException",
        "SubnetIPAddressLimitReachedException",  # capacity: frees up as ENIs are released
        "RequestTimeout",
        "RequestTimeoutException",
        "ResourceConflictException",
        "SnapStartNotReadyException",
        "SnapStartTimeoutException",
        "EFSMountConnectivityException",
        "EFSMountTimeoutException",
        "EFSIOException",
        "IDPCommunicationError",  # STS
    }
)
AWS_ERROR_PREFIXES = ("ENI",)  # ENILimitReachedException and its kin
CONFIGURATION_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "InvalidRequestContentException",
        "InvalidParameterValueException",
        "RequestTooLargeException",
        "RequestEntityTooLargeException",
        "UnsupportedMediaTypeException",
        "EC2AccessDeniedException",  # the function's execution role lacks EC2 permissions
        "EFSMountFailureException",
        "SnapStartException",
        "MalformedPolicyDocument",
        "PackedPolicyTooLarge",
        "RegionDisabledException",
        "ValidationError",
    }
)
CONFIGURATION_PREFIXES = ("KMS", "Invalid")  # KMS*Exception, InvalidSubnetID/ZipFile/Runtime...

_VERDICTS: dict[Category, Verdict] = {
    Category.DELIVERED: Verdict.SUCCESS,
    Category.EXECUTION_ERROR: Verdict.RETRY,
    Category.TIMEOUT: Verdict.RETRY,
    Category.ACCESS_DENIED: Verdict.BACKOFF_DESTINATION,
    Category.INVALID_CREDENTIALS: Verdict.BACKOFF_DESTINATION,
    Category.THROTTLED: Verdict.RETRY,
    Category.AWS_ERROR: Verdict.RETRY,
    Category.CONFIGURATION: Verdict.DISCARD,
}


def classify(
    status: int | None,
    error_code: str | None = None,
    function_error: str | None = None,
) -> tuple[Category, Verdict]:
    """Classify one attempt. ``status`` is None when no answer came (then ``error_code`` is
    ``TIMED_OUT`` or ``CONNECTION_FAILED``); ``error_code`` is the AWS code (``x-amzn-ErrorType``
    or the body's ``__type``/``Code``); ``function_error`` is ``X-Amz-Function-Error``.

    An execution error is always RETRY here: whether to retry it is delivery policy
    (``delivery.retry_execution_errors``), decided in ``delivery/decide.py``."""
    category = _category(status, error_code, function_error)
    return category, _VERDICTS[category]


def _category(status: int | None, code: str | None, function_error: str | None) -> Category:
    if status in (200, 202, 204) and not code:
        return Category.EXECUTION_ERROR if function_error else Category.DELIVERED
    if code:
        by_code = category_of_code(code)
        if by_code is not None:
            return by_code
    return _category_of_status(status)


def category_of_code(code: str) -> Category | None:
    """The category of an AWS error code, or None when the code is not known."""
    if code == TIMED_OUT:
        return Category.TIMEOUT
    if code in ACCESS_DENIED_CODES:
        return Category.ACCESS_DENIED
    if code in INVALID_CREDENTIALS_CODES:
        return Category.INVALID_CREDENTIALS
    if code in THROTTLED_CODES:
        return Category.THROTTLED
    if code in AWS_ERROR_CODES or code.startswith(AWS_ERROR_PREFIXES):
        return Category.AWS_ERROR
    if code in CONFIGURATION_CODES or code.startswith(CONFIGURATION_PREFIXES):
        return Category.CONFIGURATION
    return None


def _category_of_status(status: int | None) -> Category:
    if status is None:
        return Category.AWS_ERROR
    if status == 429:
        return Category.THROTTLED
    if status in (401, 403):
        return Category.ACCESS_DENIED
    if status in (408, 409) or status >= 500:
        return Category.AWS_ERROR
    if 400 <= status < 500:
        return Category.CONFIGURATION
    return Category.AWS_ERROR  # 1xx/3xx/other 2xx: not an answer Lambda gives; try again
