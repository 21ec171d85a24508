"""Pure logic of statistics and samples: percentiles, time ranges, hints, secret scrubbing."""

from __future__ import annotations

import pytest

from eventrelay.core.outcome import HUMAN_NAMES, Category
from eventrelay.deliverylog.hints import hint
from eventrelay.deliverylog.stats import latency_of, parse_when, percentile, sample_json, scrub, time_range
from tests.deliverylog.records import attempt

NOW = 1_790_000_000.0


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    lat = latency_of([30.0, 10.0, 20.0])
    assert (lat.count, lat.p50_ms, lat.p95_ms, lat.p99_ms) == (3, 20.0, 30.0, 30.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1790000000", 1_790_000_000.0),
        ("1h", NOW - 3600),
        ("10m", NOW - 600),
        ("7d", NOW - 7 * 86400),
        ("2026-09-21T14:13:20Z", 1_790_000_000.0),
        ("2026-09-21T16:13:20+02:00", 1_790_000_000.0),
    ],
)
def test_times_can_be_epoch_iso_or_a_duration_back(text: str, expected: float) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "nan", "inf", "", "1 hour"])
def test_a_bad_time_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_when(text, NOW)


def test_time_ranges_default_to_the_last_hour_and_name_the_bad_parameter() -> None:
    assert time_range(None, None, None, NOW) == (NOW - 3600, NOW)
    assert time_range("7d", None, None, NOW) == (NOW - 7 * 86400, NOW)
    assert time_range(None, "2h", "1h", NOW) == (NOW - 7200, NOW - 3600)
    for args, param in (
        ((("3h", None, None)), "range"),
        ((None, "1h", "2h"), "since"),
        ((None, None, "x"), "until"),
    ):
        with pytest.raises(ValueError, match=f"^{param}:"):
            time_range(*args, NOW)


def test_every_category_has_a_human_name_description_and_fix() -> None:
    for category in Category:
        h = hint(category, external_id="ws_1")
        assert h.name == HUMAN_NAMES[category]
        assert h.description and h.fix
        assert "{" not in h.fix
    assert "sts:ExternalId = ws_1" in hint(Category.ACCESS_DENIED, external_id="ws_1").fix
    assert "(5 s)" in hint(Category.TIMEOUT).fix
    assert "(30 s)" in hint(Category.TIMEOUT, timeout_s=30).fix
    assert "base AWS credentials" in hint(Category.INVALID_CREDENTIALS).fix
    assert "log tail" in hint(Category.EXECUTION_ERROR).fix


def test_secrets_are_redacted_at_any_depth() -> None:
    cleaned = scrub(
        {
            "a": 1,
            "writeKey": "k",
            "nested": [{"SessionToken": "t", "ok": "v"}],
            "headers": {"Authorization": "x", "X-Amz-Security-Token": "y"},
            "aws_secret_access_key": "s",
        }
    )
    assert cleaned == {
        "a": 1,
        "writeKey": "[redacted]",
        "nested": [{"SessionToken": "[redacted]", "ok": "v"}],
        "headers": {"Authorization": "[redacted]", "X-Amz-Security-Token": "[redacted]"},
        "aws_secret_access_key": "[redacted]",
    }


def test_a_sample_has_the_three_panes() -> None:
    rec = attempt("m1", Category.EXECUTION_ERROR, log_tail="boom")
    s = sample_json(rec)
    assert s["category_name"] == "Execution Error"
    assert s["you_sent"]["messageId"] == "m1"
    assert (s["request"]["function"], s["request"]["qualifier"], s["request"]["invocation_type"]) == (
        "my-fn",
        "live",
        "RequestResponse",
    )
    assert s["response"] == {
        "status": 200,
        "error_type": "Exception",
        "error_message": "boom from handler",
        "log_tail": "boom",
        "executed_version": "3",
        "body": '{"errorMessage":"boom from handler"}',
    }
    rec.event = b""
    assert sample_json(rec)["you_sent"] is None
