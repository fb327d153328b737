"""boto3 clients for a bucket: the instance profile's credentials, the bucket's region."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from contract.agent_settings import Storage


def client(storage: Storage, *, timeout: float = 10.0, attempts: int = 2) -> Any:
    config = Config(
        region_name=storage.region,
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        s3={"addressing_style": "path"} if storage.endpoint else None,
    )
    return boto3.client("s3", endpoint_url=storage.endpoint, config=config)
