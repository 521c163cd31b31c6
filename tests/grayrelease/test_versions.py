"""Semantic versions for client-version rules: strict for operators, lenient for
what devices declare, ordered by semver precedence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grayrelease.versions import (
    InvalidVersion,
    parse_client_version,
    parse_version,
)

# semver.org §11's own example, lowest first.
PRECEDENCE = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.2.0",
    "2.0.0",
    "10.0.0",
]


def test_parse_version__semver_examples__sort_in_semver_precedence() -> None:
    keys = [parse_version(text) for text in PRECEDENCE]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_parse_version__build_metadata__does_not_change_precedence() -> None:
    assert parse_version("1.2.3+build.7") == parse_version("1.2.3")


@pytest.mark.parametrize(
    "text",
    [
        "1.2",
        "1.2.3.4",
        "v1.2.3",
        "01.2.3",
        "1.2.3-",
        "1.2.3-01",
        "",
        "1.2.x",
        " 1.2.3",
        "1" * 40 + ".0.0",
    ],
)
def test_parse_version__not_strict_semver__is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidVersion, match=r"semantic version|longer than"):
        parse_version(text)


def test_parse_client_version__what_devices_may_declare__reads_leniently() -> None:
    assert parse_client_version("08.0.50") == parse_version("8.0.50")
    assert parse_client_version("3.0.0-beta.1") == parse_version("3.0.0-beta.1")
    assert parse_client_version("garbage") is None
    assert parse_client_version(None) is None


@given(
    a=st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999)),
    b=st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999)),
)
def test_parse_version__releases__order_as_their_numbers(
    a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    key_a, key_b = (parse_version(".".join(map(str, v))) for v in (a, b))
    assert (key_a < key_b) == (a < b)
    # and a pre-release sits just below its release
    assert parse_version(".".join(map(str, a)) + "-rc.1") < key_a
