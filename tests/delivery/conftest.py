"""Fixtures of the delivery tests: fake credentials and one moto server per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.support.delivery import FAKE_CREDENTIALS, reset, start_server


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[str]:
    """`python -m delivery.local_aws`: moto_server with the four fixes this stack needs
    (object requests under a bucket policy's conditions, PutBucketLogging into a bucket with
    TLS Denies, GetBucketReplication, RunTask of a container without memory) and two savings
    (KMS key pairs generated when first used, moto's packages listed once); see that module."""
    yield from start_server([sys.executable, "-m", "delivery.local_aws"])


@pytest.fixture
def moto_url(local_aws: str) -> str:
    """A fresh, empty moto for each test."""
    return reset(local_aws)
