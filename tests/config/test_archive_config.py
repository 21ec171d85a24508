"""``archive:`` in the configuration file: defaults, sizes and durations, errors by field path."""

from __future__ import annotations

import pytest

from eventrelay.config import parse_config
from eventrelay.core.errors import ConfigError
from eventrelay.core.size import format_size, parse_size
from eventrelay.runtime.build import archive_limits, jetstream_max_age


def test_the_archive_keeps_a_week_or_two_gigabytes_by_default() -> None:
    archive = parse_config("{}", {}).archive
    assert (archive.enabled, archive.retention, archive.max_bytes) == (True, 7 * 86400.0, 2 * 10**9)


def test_retention_and_max_bytes_are_read_as_written() -> None:
    config = parse_config("archive: {retention: 36h, max_bytes: 500MB}", {})
    limits = archive_limits(config)
    assert limits is not None and (limits.retention, limits.max_bytes) == (36 * 3600.0, 500 * 10**6)
    assert archive_limits(parse_config("archive: {enabled: false}", {})) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("archive: {max_bytes: lots}", "archive.max_bytes: 'lots' is not a size like 64KB, 500MB, 2GB or 1GiB"),
        ("archive: {max_bytes: 10KB}", "archive.max_bytes"),
        ("archive: {retention: 0}", "archive.retention"),
        ("archive: {keep: forever}", "archive.keep: unknown key"),
    ],
)
def test_a_bad_archive_setting_names_its_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, {})
    assert message in str(info.value)


def test_sizes_in_decimal_and_binary_units() -> None:
    assert [parse_size(v) for v in ("2GB", "500 MB", "1GiB", "64kb", 1234, "7")] == [
        2 * 10**9, 500 * 10**6, 2**30, 64_000, 1234, 7,
    ]  # fmt: skip
    assert (format_size(2 * 10**9), format_size(1_500), format_size(12)) == ("2.0 GB", "1.5 KB", "12 B")


def test_on_jetstream_the_stream_keeps_the_archive_but_never_less_than_a_retry_window() -> None:
    text = """
storage: {backend: jetstream}
archive: {retention: 1h}
sources: [{name: web, write_key: kkkkkkkkkkkkkkkkkkkkkkkk}]
destinations:
  - {name: d, settings: {lambda: f, region: us-west-2, role_address: "arn:aws:iam::123456789012:role/r"},
     delivery: {retry_window: 4h}}
"""
    assert jetstream_max_age(parse_config(text, {})) == 5 * 3600.0
    assert jetstream_max_age(parse_config(text.replace("retention: 1h", "retention: 3d"), {})) == 3 * 86400.0
