"""`python -m delivery.local_aws -H 127.0.0.1 -p PORT`: the moto server of the local stack.

Stock `moto_server` (moto 5.2.1) with four fixes, each hit by this stack:
- S3: an object request (GetObject, PutObject, DeleteObject, DeleteObjects) is answered 403 when
  the bucket policy has a statement with a Condition for that action, whatever its effect:
  moto evaluates no condition there (it passes no request context) and takes the unmet one as
  a Deny. Every backup bucket here has the TLS-only Denies on s3:*, so no object
  could be read or written. Here such a request is checked against the policy's statements
  without a Condition only; the conditions are IAM's to evaluate (the compliance review's
  evaluator), not moto's.
- S3: PutBucketLogging answers 500 when the target bucket's policy has a statement whose
  Principal is the string "*" (moto calls `.get` on it): every log bucket here has the TLS
  Denies, so logging could never be configured.
- S3: GetBucketReplication answers with a fixed `DeleteMarkerReplication: Disabled` and
  `Filter: {Prefix: ""}` and drops `SourceSelectionCriteria`, whatever was stored; the smoke
  check compares exactly those members. Here S3 answers with the rules it stored, as AWS does.
- ECS: RunTask answers 500 for a task definition whose container has neither `memory` nor
  `memoryReservation` (moto adds None to its sum), which Fargate allows when the task sets
  its memory, as every task definition here does. Here such a container counts as 0 MiB;
  the sum only places tasks on EC2 container instances, which Fargate has none of.
Everything else is stock moto_server. tests/delivery shows each bug on stock moto.

And two savings, for a long-running server answering one deployment after another:
- KMS: CreateKey generates an RSA-2048 key pair for every key, a symmetric one too (some 0.1 s
  of CPU each, the most expensive request a deployment here sends); only Sign, Verify and
  GetPublicKey use it. Here the pair is generated when one of those first needs it.
- Every request looks its service up among moto's package folders, listing them anew
  (some 150 `stat` calls); here they are listed once.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
from types import SimpleNamespace
from typing import Any, Final

import moto.backends
import moto.kms.models
from moto import server
from moto.core.responses import ActionResult
from moto.ecs.models import EC2ContainerServiceBackend
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.kms.utils import AbstractPrivateKey
from moto.s3.exceptions import ReplicationConfigurationNotFoundError
from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response

_stock_log_permissions = FakeBucket._log_permissions_enabled_policy


def unconditional_permission(bucket: FakeBucket, action: str, resource: str) -> Any:
    """moto's own object-request check, shown the statements without a Condition."""
    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(bucket.policy.decode())
    statements = [s for s in document["Statement"] if "Condition" not in s]
    return IAMPolicy(json.dumps({**document, "Statement": statements})).is_action_permitted(
        action, resource)


def log_permissions(target_bucket: FakeBucket, target_prefix: str | None) -> bool:
    """moto's own check, shown only the statements whose Principal is an object."""
    if not target_bucket.policy:
        return False
    document = json.loads(target_bucket.policy.decode())
    statements = [s for s in document["Statement"] if isinstance(s.get("Principal"), dict)]
    shown = SimpleNamespace(name=target_bucket.name, partition=target_bucket.partition,
                            policy=json.dumps({**document, "Statement": statements}).encode())
    return _stock_log_permissions(shown, target_prefix)


def stored_replication(self: S3Response) -> Any:
    self.data["Action"] = "GetBucketReplication"
    replication = self.backend.get_bucket_replication(self.bucket_name)
    if not replication:
        raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
    rules = []
    for rule in replication["Rule"]:
        # The XML parser stores an empty <Prefix/> as None.
        prefix_filter = {key: value or "" for key, value in rule.get("Filter", {}).items()}
        rules.append({**rule, "Filter": prefix_filter} if "Filter" in rule else rule)
    result = {"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}}
    return self.serialized(ActionResult(result))


_stock_task_requirements = EC2ContainerServiceBackend._calculate_task_resource_requirements


def task_requirements(task_definition: Any) -> dict[str, Any]:
    """moto's own sum, shown a container without memory or memoryReservation as 0 MiB."""
    containers = [definition if {"memory", "memoryReservation", "Memory", "MemoryReservation"}
                  & definition.keys() else {**definition, "memory": 0}
                  for definition in task_definition.container_definitions]
    return _stock_task_requirements(SimpleNamespace(container_definitions=containers))


_stock_private_key = moto.kms.models.generate_private_key


class KeyPairOnFirstUse(AbstractPrivateKey):
    """A KMS key's key pair as moto generates it for `key_spec`, generated when first used."""

    def __init__(self, key_spec: str) -> None:
        self.key_spec = key_spec
        self._pair: AbstractPrivateKey | None = None
        self._lock = threading.Lock()  # the server answers requests in threads

    @property
    def pair(self) -> AbstractPrivateKey:
        with self._lock:
            if self._pair is None:
                self._pair = _stock_private_key(self.key_spec)
            return self._pair

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        return self.pair.sign(message, signing_algorithm)

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return self.pair.verify(message, signature, signing_algorithm)

    def public_key(self) -> bytes:
        return self.pair.public_key()


_stock_moto_modules = moto.backends.list_of_moto_modules


@functools.cache
def moto_modules() -> tuple[str, ...]:
    """moto's service packages, the folders of its installed package."""
    return tuple(_stock_moto_modules())


# (owner, attribute, replacement): what this server changes in moto, the fixes and the savings.
REPLACEMENTS: Final = (
    (FakeBucket, "_log_permissions_enabled_policy", staticmethod(log_permissions)),
    (FakeBucket, "get_permission", unconditional_permission),
    (S3Response, "get_bucket_replication", stored_replication),
    (EC2ContainerServiceBackend, "_calculate_task_resource_requirements",
     staticmethod(task_requirements)),
    (moto.kms.models, "generate_private_key", KeyPairOnFirstUse),
    (moto.backends, "list_of_moto_modules", moto_modules),
)


def main(argv: list[str] | None = None) -> None:
    for owner, attribute, replacement in REPLACEMENTS:
        setattr(owner, attribute, replacement)
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
