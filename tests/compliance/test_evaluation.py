"""Tests for compliance.evaluation, built on AWS's documented policy examples.

Each policy taken from AWS documentation names its page.  "IAM UG" is the AWS
IAM User Guide (docs.aws.amazon.com/IAM/latest/UserGuide/).  Where an example
was adapted (placeholders filled in, a policy variable replaced by a literal),
the comment says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from compliance.evaluation import (
    Decision,
    LabelledPolicy,
    Request,
    StatementRef,
    evaluate,
    statement_matches,
)

ACCOUNT = "111122223333"
BACKUP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup-server"
RESTORE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/restore-server"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
BUCKET = "arn:aws:s3:::DOC-EXAMPLE-BUCKET"

IMPLICIT_DENY = Decision(False, "implicit-deny", ())


def req(
    action: str,
    resource: str,
    principal: str | None = BACKUP_ROLE,
    context: dict[str, str | list[str]] | None = None,
) -> Request:
    return Request(principal, action, resource, context or {})


def identity(
    label: str, *statements: dict[str, Any], principal: str = BACKUP_ROLE
) -> LabelledPolicy:
    doc = {"Version": "2012-10-17", "Statement": list(statements)}
    return LabelledPolicy(label, "identity", doc, principal_arn=principal)


def resource(label: str, *statements: dict[str, Any]) -> LabelledPolicy:
    return LabelledPolicy(
        label, "resource", {"Version": "2012-10-17", "Statement": list(statements)}
    )


def allowed(*refs: tuple[str, str]) -> Decision:
    return Decision(True, "allow", tuple(StatementRef(p, s) for p, s in refs))


def denied(*refs: tuple[str, str]) -> Decision:
    return Decision(False, "explicit-deny", tuple(StatementRef(p, s) for p, s in refs))


# An identity policy that allows everything, so tests of Deny statements can
# show "not denied" as an allow rather than as an implicit deny.
ALLOW_ALL = identity(
    "admin", {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"}
)


# --- explicit deny, allow, implicit deny ---------------------------------------

# IAM UG, "Condition operators" -> "Boolean condition operators" (identity-based).
BOOLEAN_EXAMPLE = identity(
    "role policy deny-http",
    {
        "Sid": "BooleanExample",
        "Action": "s3:*",
        "Effect": "Deny",
        "Resource": [BUCKET, f"{BUCKET}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    },
)
READ_BUCKET = identity(
    "role policy backup-server",
    {"Sid": "ReadObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"},
)


@pytest.mark.parametrize(
    ("secure", "expected"),
    [
        ("false", denied(("role policy deny-http", "BooleanExample"))),
        ("true", allowed(("role policy backup-server", "ReadObjects"))),
        # The doc notes the key is always present; if it were not, Bool does not match.
        (None, allowed(("role policy backup-server", "ReadObjects"))),
    ],
)
def test_explicit_deny_beats_allow_secure_transport(secure: str | None, expected: Decision) -> None:
    context = {} if secure is None else {"aws:SecureTransport": secure}
    request = req("s3:GetObject", f"{BUCKET}/postgres/x", context=context)
    assert evaluate(request, [READ_BUCKET, BOOLEAN_EXAMPLE]) == expected


def test_implicit_deny_when_no_allow_matches() -> None:
    request = req("s3:PutObject", f"{BUCKET}/postgres/x", context={"aws:SecureTransport": "true"})
    assert evaluate(request, [READ_BUCKET, BOOLEAN_EXAMPLE]) == IMPLICIT_DENY
    assert evaluate(request, []) == IMPLICIT_DENY


def test_explicit_deny_lists_every_matching_deny_in_policy_order() -> None:
    bucket_policy = resource(
        "bucket policy",
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:Get*", "Resource": f"{BUCKET}/*"},
        {
            "Sid": "NoMatch",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:Put*",
            "Resource": "*",
        },
    )
    request = req("s3:GetObject", f"{BUCKET}/k", context={"aws:SecureTransport": "false"})
    assert evaluate(request, [BOOLEAN_EXAMPLE, bucket_policy]) == denied(
        ("role policy deny-http", "BooleanExample"), ("bucket policy", "#1")
    )


def test_allow_lists_every_matching_allow() -> None:
    bucket_policy = resource(
        "bucket policy",
        {
            "Sid": "Backup",
            "Effect": "Allow",
            "Principal": {"AWS": BACKUP_ROLE},
            "Action": "s3:*",
            "Resource": f"{BUCKET}/*",
        },
    )
    request = req("s3:GetObject", f"{BUCKET}/k")
    assert evaluate(request, [READ_BUCKET, bucket_policy]) == allowed(
        ("role policy backup-server", "ReadObjects"), ("bucket policy", "Backup")
    )


def test_identity_policy_applies_only_to_its_principal() -> None:
    request = req("s3:GetObject", f"{BUCKET}/k", principal=RESTORE_ROLE)
    assert evaluate(request, [READ_BUCKET, BOOLEAN_EXAMPLE]) == IMPLICIT_DENY
    assert (
        evaluate(req("s3:GetObject", f"{BUCKET}/k", principal=None), [READ_BUCKET]) == IMPLICIT_DENY
    )


# --- numeric: s3:TlsVersion ------------------------------------------------------

# AWS re:Post Knowledge Center, "How can I enforce TLS 1.2 or later for my
# Amazon S3 buckets?" (repost.aws/knowledge-center/s3-enforce-modern-tls).
# Note the unquoted JSON number 1.2.  The Allow statement is ours.
TLS_POLICY = resource(
    "bucket policy (primary)",
    {
        "Sid": "EnforceTLSv12orHigher",
        "Principal": {"AWS": "*"},
        "Action": ["s3:*"],
        "Effect": "Deny",
        "Resource": [f"{BUCKET}/*", BUCKET],
        "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
    },
    {
        "Sid": "AllowBackup",
        "Effect": "Allow",
        "Principal": {"AWS": BACKUP_ROLE},
        "Action": "s3:PutObject",
        "Resource": f"{BUCKET}/*",
    },
)
# Same page, second policy: deny HTTPS below TLS 1.2 but leave plain HTTP alone.
UPDATE_TLS_POLICY = resource(
    "bucket policy (http allowed)",
    {
        "Sid": "UpdateTLSv12",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": f"{BUCKET}/*",
        "Condition": {
            "Bool": {"aws:SecureTransport": "true"},
            "NumericLessThan": {"s3:TlsVersion": "1.2"},
        },
    },
)


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        ("1.0", denied(("bucket policy (primary)", "EnforceTLSv12orHigher"))),
        ("1.1", denied(("bucket policy (primary)", "EnforceTLSv12orHigher"))),
        ("1.2", allowed(("bucket policy (primary)", "AllowBackup"))),
        ("1.3", allowed(("bucket policy (primary)", "AllowBackup"))),
    ],
)
def test_numeric_less_than_compares_numbers_not_strings(tls: str, expected: Decision) -> None:
    request = req("s3:PutObject", f"{BUCKET}/postgres/x", context={"s3:TlsVersion": tls})
    assert evaluate(request, [TLS_POLICY]) == expected


@pytest.mark.parametrize(
    ("context", "denied_"),
    [
        ({"aws:SecureTransport": "true", "s3:TlsVersion": "1.0"}, True),
        ({"aws:SecureTransport": "true", "s3:TlsVersion": "1.2"}, False),
        ({"aws:SecureTransport": "false"}, False),  # plain HTTP: no TLS key, no match
    ],
)
def test_condition_operators_are_anded(context: dict[str, str], denied_: bool) -> None:
    request = req("s3:GetObject", f"{BUCKET}/x", context=context)
    expected = (
        denied(("bucket policy (http allowed)", "UpdateTLSv12"))
        if denied_
        else allowed(("admin", "AllowAll"))
    )
    assert evaluate(request, [ALLOW_ALL, UPDATE_TLS_POLICY]) == expected


# IAM UG, "Condition operators" -> "Numeric condition operators".
MAX_KEYS = {
    "Effect": "Allow",
    "Action": "s3:ListBucket",
    "Resource": "arn:aws:s3:::example_bucket",
    "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}},
}


@pytest.mark.parametrize(("max_keys", "expected"), [("10", True), ("9.5", True), ("11", False)])
def test_numeric_less_than_equals(max_keys: str, expected: bool) -> None:
    request = req("s3:ListBucket", "arn:aws:s3:::example_bucket", context={"s3:max-keys": max_keys})
    assert statement_matches(MAX_KEYS, request, resource_based=False) is expected


@pytest.mark.parametrize(
    ("operator", "max_keys", "expected"),
    [
        # Each row would come out the other way under a string comparison.
        ("NumericLessThan", "9", True),
        ("NumericLessThan", "10", False),
        ("NumericGreaterThan", "9", False),
        ("NumericGreaterThanEquals", "10.0", True),
        ("NumericGreaterThanEquals", "9", False),
        ("NumericEquals", "10.0", True),
    ],
)
def test_numeric_operators_compare_as_numbers(operator: str, max_keys: str, expected: bool) -> None:
    statement = {**MAX_KEYS, "Condition": {operator: {"s3:max-keys": "10"}}}
    request = req("s3:ListBucket", "arn:aws:s3:::example_bucket", context={"s3:max-keys": max_keys})
    assert statement_matches(statement, request, resource_based=False) is expected


def test_numeric_not_equals_is_negated() -> None:
    statement = {**MAX_KEYS, "Condition": {"NumericNotEquals": {"s3:max-keys": ["10", "20"]}}}
    listing = "arn:aws:s3:::example_bucket"
    assert (
        statement_matches(
            statement,
            req("s3:ListBucket", listing, context={"s3:max-keys": "10.0"}),
            resource_based=False,
        )
        is False
    )
    assert (
        statement_matches(
            statement,
            req("s3:ListBucket", listing, context={"s3:max-keys": "15"}),
            resource_based=False,
        )
        is True
    )


# --- principals ---------------------------------------------------------------------

BACKUP_WRITE = resource(
    "bucket policy (primary)",
    {
        "Sid": "AllowBackupServerWrite",
        "Effect": "Allow",
        "Principal": {"AWS": [BACKUP_ROLE]},
        "Action": ["s3:PutObject"],
        "Resource": f"{BUCKET}/*",
    },
)


def test_resource_policy_allows_named_principal_without_identity_policy() -> None:
    # IAM UG, "Policy evaluation for requests within a single account": either
    # policy type allowing is enough within one account.
    request = req("s3:PutObject", f"{BUCKET}/postgres/x")
    assert evaluate(request, [BACKUP_WRITE]) == allowed(
        ("bucket policy (primary)", "AllowBackupServerWrite")
    )


@pytest.mark.parametrize("principal", [RESTORE_ROLE, ROOT, None, "service:s3.amazonaws.com"])
def test_resource_policy_denies_other_principals(principal: str | None) -> None:
    request = req("s3:PutObject", f"{BUCKET}/postgres/x", principal=principal)
    assert evaluate(request, [BACKUP_WRITE]) == IMPLICIT_DENY


# IAM UG, "AWS JSON policy elements: Principal" -> "AWS account principals":
# naming the account "delegates authority to the account"; "the account ARN and
# the shortened account ID behave the same way".
@pytest.mark.parametrize("account", [ROOT, ACCOUNT])
def test_account_principal_allow_delegates_to_identity_policies(account: str) -> None:
    bucket_policy = resource(
        "bucket policy",
        {
            "Sid": "Account",
            "Effect": "Allow",
            "Principal": {"AWS": account},
            "Action": "s3:*",
            "Resource": f"{BUCKET}/*",
        },
    )
    request = req("s3:GetObject", f"{BUCKET}/k", principal=RESTORE_ROLE)
    assert evaluate(request, [bucket_policy]) == IMPLICIT_DENY
    restore_policy = identity(
        "role policy restore-server",
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        principal=RESTORE_ROLE,
    )
    assert evaluate(request, [bucket_policy, restore_policy]) == allowed(
        ("role policy restore-server", "Read")
    )
    root_request = req("s3:GetObject", f"{BUCKET}/k", principal=ROOT)
    assert evaluate(root_request, [bucket_policy]) == allowed(("bucket policy", "Account"))


@pytest.mark.parametrize("account", [ROOT, ACCOUNT])
def test_account_principal_deny_covers_every_principal_of_the_account(account: str) -> None:
    bucket_policy = resource(
        "bucket policy",
        {
            "Sid": "DenyAccount",
            "Effect": "Deny",
            "Principal": {"AWS": account},
            "Action": "s3:*",
            "Resource": f"{BUCKET}/*",
        },
    )
    for principal in (BACKUP_ROLE, ROOT, f"arn:aws:sts::{ACCOUNT}:assumed-role/backup-server/s1"):
        request = req("s3:GetObject", f"{BUCKET}/k", principal=principal)
        assert evaluate(request, [bucket_policy]) == denied(("bucket policy", "DenyAccount"))
    outsider = req("s3:GetObject", f"{BUCKET}/k", principal="arn:aws:iam::444455556666:role/x")
    assert evaluate(outsider, [bucket_policy]) == IMPLICIT_DENY
    assert (
        evaluate(req("s3:GetObject", f"{BUCKET}/k", principal=None), [bucket_policy])
        == IMPLICIT_DENY
    )


def test_service_principal_convention() -> None:
    # IAM UG, "Principal" -> "AWS service principals" ({"Service": ...}); a service
    # calling is written "service:<service principal>" in Request.principal_arn.
    bucket_policy = resource(
        "bucket policy",
        {
            "Sid": "Backup",
            "Effect": "Allow",
            "Principal": {"Service": ["backup.amazonaws.com"]},
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET}/*",
        },
    )
    ok = req("s3:GetObject", f"{BUCKET}/k", principal="service:backup.amazonaws.com")
    assert evaluate(ok, [bucket_policy]) == allowed(("bucket policy", "Backup"))
    for principal in ("service:s3.amazonaws.com", "backup.amazonaws.com", BACKUP_ROLE, None):
        request = req("s3:GetObject", f"{BUCKET}/k", principal=principal)
        assert evaluate(request, [bucket_policy]) == IMPLICIT_DENY


@pytest.mark.parametrize("principal_element", ["*", {"AWS": "*"}])
def test_wildcard_principal_includes_anonymous(principal_element: object) -> None:
    # IAM UG, "Principal" -> "All principals": "*" and {"AWS": "*"} are equivalent.
    statement = {
        "Effect": "Allow",
        "Principal": principal_element,
        "Action": "s3:GetObject",
        "Resource": f"{BUCKET}/*",
    }
    for principal in (None, BACKUP_ROLE, "service:backup.amazonaws.com"):
        request = req("s3:GetObject", f"{BUCKET}/public.txt", principal=principal)
        assert statement_matches(statement, request, resource_based=True) is True


# IAM UG, "AWS JSON policy elements: NotPrincipal" -> "IAM user in the same or a
# different account" (BUCKETNAME kept; the Allow statement is ours).
NOT_PRINCIPAL = resource(
    "bucket policy",
    {
        "Effect": "Deny",
        "NotPrincipal": {
            "AWS": ["arn:aws:iam::444455556666:user/Bob", "arn:aws:iam::444455556666:root"]
        },
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::BUCKETNAME", "arn:aws:s3:::BUCKETNAME/*"],
    },
    {"Sid": "AllowAll", "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
)


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("arn:aws:iam::444455556666:user/Bob", allowed(("bucket policy", "AllowAll"))),
        ("arn:aws:iam::444455556666:user/Alice", denied(("bucket policy", "#0"))),
        (BACKUP_ROLE, denied(("bucket policy", "#0"))),
        (None, denied(("bucket policy", "#0"))),
    ],
)
def test_not_principal_with_deny(principal: str | None, expected: Decision) -> None:
    request = req("s3:GetObject", "arn:aws:s3:::BUCKETNAME/report.csv", principal=principal)
    assert evaluate(request, [NOT_PRINCIPAL]) == expected


# --- NotAction, NotResource, StringNotEquals with a missing key ---------------------

# IAM UG, "AWS: Denies access to AWS based on the requested Region".
DENY_OUTSIDE_EU = identity(
    "role policy region-guard",
    {
        "Sid": "DenyAllOutsideEU",
        "Effect": "Deny",
        "NotAction": ["cloudfront:*", "iam:*", "route53:*", "support:*"],
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-central-1", "eu-west-1"]}},
    },
)
OUTSIDE_EU = denied(("role policy region-guard", "DenyAllOutsideEU"))


@pytest.mark.parametrize(
    ("action", "region", "expected"),
    [
        ("ec2:RunInstances", "us-east-1", OUTSIDE_EU),
        ("ec2:RunInstances", "eu-west-1", allowed(("admin", "AllowAll"))),
        ("ec2:RunInstances", "eu-central-1", allowed(("admin", "AllowAll"))),
        ("iam:CreateUser", "us-east-1", allowed(("admin", "AllowAll"))),  # NotAction exempts it
        ("IAM:createuser", "us-east-1", allowed(("admin", "AllowAll"))),  # actions ignore case
        # Negated operator, key absent: "the condition is true" (Condition operators page).
        ("ec2:RunInstances", None, OUTSIDE_EU),
    ],
)
def test_not_action_and_string_not_equals(
    action: str, region: str | None, expected: Decision
) -> None:
    context = {} if region is None else {"aws:RequestedRegion": region}
    request = req(action, "*", context=context)
    assert evaluate(request, [ALLOW_ALL, DENY_OUTSIDE_EU]) == expected


# IAM UG, "IAM JSON policy elements: NotResource" (HRPayroll example).
NOT_RESOURCE = identity(
    "group policy HRPayroll",
    {
        "Effect": "Deny",
        "Action": "s3:*",
        "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"],
    },
)


@pytest.mark.parametrize(
    ("resource_arn", "expected"),
    [
        ("arn:aws:s3:::HRBucket/Payroll", allowed(("admin", "AllowAll"))),
        ("arn:aws:s3:::HRBucket/Payroll/2024/march.csv", allowed(("admin", "AllowAll"))),
        ("arn:aws:s3:::HRBucket/Other/x", denied(("group policy HRPayroll", "#0"))),
        (
            "arn:aws:s3:::hrbucket/Payroll/x",
            denied(("group policy HRPayroll", "#0")),
        ),  # case matters
    ],
)
def test_not_resource(resource_arn: str, expected: Decision) -> None:
    assert evaluate(req("s3:GetObject", resource_arn), [ALLOW_ALL, NOT_RESOURCE]) == expected


# --- IfExists, Null, Bool ----------------------------------------------------------

# IAM UG, "IAM JSON policy elements: NotAction" -> "NotAction with Deny".
DENY_WITHOUT_MFA = identity(
    "role policy mfa",
    {
        "Sid": "DenyAllUsersNotUsingMFA",
        "Effect": "Deny",
        "NotAction": "iam:*",
        "Resource": "*",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    },
)


@pytest.mark.parametrize(
    ("action", "mfa", "denied_"),
    [
        ("s3:GetObject", "false", True),
        ("s3:GetObject", None, True),  # IfExists: a missing key makes the condition true
        ("s3:GetObject", "true", False),
        ("s3:GetObject", "TRUE", False),  # Bool ignores case
        ("iam:ListUsers", "false", False),
    ],
)
def test_bool_if_exists(action: str, mfa: str | None, denied_: bool) -> None:
    context = {} if mfa is None else {"aws:MultiFactorAuthPresent": mfa}
    expected = (
        denied(("role policy mfa", "DenyAllUsersNotUsingMFA"))
        if denied_
        else allowed(("admin", "AllowAll"))
    )
    assert evaluate(req(action, "*", context=context), [ALLOW_ALL, DENY_WITHOUT_MFA]) == expected


def test_if_exists_on_negated_operator_and_present_key() -> None:
    # "If you are using an "Effect": "Deny" element with a negated condition
    # operator like StringNotEqualsIfExists, the request is still denied even
    # if the tag is missing" (Condition operators page, "...IfExists").
    statement = {
        "Effect": "Deny",
        "Action": "ec2:*",
        "Resource": "*",
        "Condition": {"StringNotEqualsIfExists": {"aws:ResourceTag/env": "dev"}},
    }
    assert statement_matches(statement, req("ec2:StopInstances", "*"), resource_based=False) is True
    dev = req("ec2:StopInstances", "*", context={"aws:ResourceTag/env": "dev"})
    prod = req("ec2:StopInstances", "*", context={"aws:ResourceTag/env": "prod"})
    assert statement_matches(statement, dev, resource_based=False) is False
    assert statement_matches(statement, prod, resource_based=False) is True


# IAM UG, "Condition operators" -> "Condition operator to check existence of condition keys".
NULL_EXAMPLE = identity(
    "user policy no-temp-creds",
    {
        "Action": "ec2:*",
        "Effect": "Allow",
        "Resource": "*",
        "Condition": {"Null": {"aws:TokenIssueTime": "true"}},
    },
)


def test_null_true_when_key_absent() -> None:
    assert evaluate(req("ec2:DescribeInstances", "*"), [NULL_EXAMPLE]) == allowed(
        ("user policy no-temp-creds", "#0")
    )
    temp = req("ec2:DescribeInstances", "*", context={"aws:TokenIssueTime": "2024-01-01T00:00:00Z"})
    assert evaluate(temp, [NULL_EXAMPLE]) == IMPLICIT_DENY


def test_null_false_requires_key() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "ec2:*",
        "Resource": "*",
        "Condition": {"Null": {"aws:TokenIssueTime": False}},
    }
    temp = req("ec2:DescribeInstances", "*", context={"aws:TokenIssueTime": "2024-01-01T00:00:00Z"})
    assert statement_matches(statement, temp, resource_based=False) is True
    assert (
        statement_matches(statement, req("ec2:DescribeInstances", "*"), resource_based=False)
        is False
    )


# --- string operators -----------------------------------------------------------------

# IAM UG, "Condition operators" -> "String condition operators" (aws:PrincipalTag).
ACCESS_KEY_ADMIN = {
    "Effect": "Allow",
    "Action": "iam:*AccessKey*",
    "Resource": f"arn:aws:iam::{ACCOUNT}:user/*",
    "Condition": {"StringEquals": {"aws:PrincipalTag/job-category": "iamuser-admin"}},
}
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"


@pytest.mark.parametrize(
    ("operator", "tag", "expected"),
    [
        ("StringEquals", "iamuser-admin", True),
        ("StringEquals", "IAMUser-Admin", False),
        ("StringEquals", None, False),  # "the condition returns false" without the tag
        ("StringEqualsIgnoreCase", "IAMUser-Admin", True),
        ("StringNotEqualsIgnoreCase", "IAMUser-Admin", False),
        ("StringNotEqualsIgnoreCase", "auditor", True),
    ],
)
def test_string_equals_family(operator: str, tag: str | None, expected: bool) -> None:
    statement = {
        **ACCESS_KEY_ADMIN,
        "Condition": {operator: {"aws:PrincipalTag/job-category": "iamuser-admin"}},
    }
    context = {} if tag is None else {"aws:PrincipalTag/job-category": tag}
    request = req("iam:CreateAccessKey", USER_ARN, context=context)
    assert statement_matches(statement, request, resource_based=False) is expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [("iam:CreateAccessKey", True), ("IAM:updateaccesskey", True), ("iam:CreateUser", False)],
)
def test_action_wildcards_ignore_case(action: str, expected: bool) -> None:
    request = req(action, USER_ARN, context={"aws:PrincipalTag/job-category": "iamuser-admin"})
    assert statement_matches(ACCESS_KEY_ADMIN, request, resource_based=False) is expected


def test_condition_key_names_ignore_case() -> None:
    request = req(
        "iam:CreateAccessKey", USER_ARN, context={"AWS:PrincipalTag/Job-Category": "iamuser-admin"}
    )
    assert statement_matches(ACCESS_KEY_ADMIN, request, resource_based=False) is True


# IAM UG, "Condition operators" -> StringLike "home directory" example, with
# ${aws:username} replaced by the literal user name JohnDoe (variables are out of scope).
HOME_FOLDER = identity(
    "user policy JohnDoe",
    {
        "Effect": "Allow",
        "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"],
        "Resource": "arn:aws:s3:::*",
    },
    {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::BUCKET-NAME",
        "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/JohnDoe/"]}},
    },
    {
        "Effect": "Allow",
        "Action": "s3:*",
        "Resource": [
            "arn:aws:s3:::BUCKET-NAME/home/JohnDoe",
            "arn:aws:s3:::BUCKET-NAME/home/JohnDoe/*",
        ],
    },
)


@pytest.mark.parametrize(
    ("action", "resource_arn", "prefix", "expected"),
    [
        (
            "s3:ListBucket",
            "arn:aws:s3:::BUCKET-NAME",
            "home/JohnDoe/",
            allowed(("user policy JohnDoe", "#1")),
        ),
        ("s3:ListBucket", "arn:aws:s3:::BUCKET-NAME", "", allowed(("user policy JohnDoe", "#1"))),
        ("s3:ListBucket", "arn:aws:s3:::BUCKET-NAME", "home/Other/", IMPLICIT_DENY),
        ("s3:ListBucket", "arn:aws:s3:::BUCKET-NAME", None, IMPLICIT_DENY),
        (
            "s3:GetObject",
            "arn:aws:s3:::BUCKET-NAME/home/JohnDoe/a/b.txt",
            None,
            allowed(("user policy JohnDoe", "#2")),
        ),
        ("s3:GetObject", "arn:aws:s3:::BUCKET-NAME/home/Other/b.txt", None, IMPLICIT_DENY),
        (
            "s3:GetBucketLocation",
            "arn:aws:s3:::any-bucket",
            None,
            allowed(("user policy JohnDoe", "#0")),
        ),
    ],
)
def test_string_like_home_folder(
    action: str, resource_arn: str, prefix: str | None, expected: Decision
) -> None:
    context = {} if prefix is None else {"s3:prefix": prefix}
    assert (
        evaluate(req(action, resource_arn, principal=BACKUP_ROLE, context=context), [HOME_FOLDER])
        == expected
    )


def test_string_like_and_resource_question_mark_wildcards() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b/backup-????.tar",
        "Condition": {"StringNotLike": {"s3:ExistingObjectTag/class": "secret*"}},
    }
    assert (
        statement_matches(
            statement, req("s3:GetObject", "arn:aws:s3:::b/backup-2024.tar"), resource_based=False
        )
        is True
    )
    assert (
        statement_matches(
            statement, req("s3:GetObject", "arn:aws:s3:::b/backup-24.tar"), resource_based=False
        )
        is False
    )
    secret = req(
        "s3:GetObject",
        "arn:aws:s3:::b/backup-2024.tar",
        context={"s3:ExistingObjectTag/class": "secret-1"},
    )
    assert statement_matches(statement, secret, resource_based=False) is False


def test_policy_variables_are_rejected() -> None:
    # The unmodified StringLike example from the Condition operators page.
    original = identity(
        "user policy",
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::BUCKET-NAME",
            "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/"]}},
        },
    )
    with pytest.raises(ValueError, match=r"policy variables.*aws:username"):
        evaluate(req("s3:ListBucket", "arn:aws:s3:::BUCKET-NAME"), [original])


# --- ARN operators ------------------------------------------------------------------------

# IAM UG, "Principal" -> "All principals": the alternative to NotPrincipal with Deny.
PRINCIPAL_ARN_DENY = resource(
    "bucket policy",
    {
        "Sid": "UsePrincipalArnInsteadOfNotPrincipalWithDeny",
        "Effect": "Deny",
        "Action": "s3:*",
        "Principal": "*",
        "Resource": ["arn:aws:s3:::BUCKETNAME/*", "arn:aws:s3:::BUCKETNAME"],
        "Condition": {
            "ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::444455556666:user/user-name"}
        },
    },
)


@pytest.mark.parametrize(
    ("principal_arn", "denied_"),
    [("arn:aws:iam::444455556666:user/user-name", False), (BACKUP_ROLE, True), (None, True)],
)
def test_arn_not_equals_including_missing_key(principal_arn: str | None, denied_: bool) -> None:
    context = {} if principal_arn is None else {"aws:PrincipalArn": principal_arn}
    request = req(
        "s3:GetObject", "arn:aws:s3:::BUCKETNAME/x", principal=principal_arn, context=context
    )
    expected = (
        denied(("bucket policy", "UsePrincipalArnInsteadOfNotPrincipalWithDeny"))
        if denied_
        else allowed(("admin", "AllowAll"))
    )
    admin = identity(
        "admin",
        {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
        principal="arn:aws:iam::444455556666:user/user-name",
    )
    assert evaluate(request, [admin, PRINCIPAL_ARN_DENY]) == expected


def test_arn_like_matches_component_by_component() -> None:
    # IAM UG, "Condition operators" -> "ARN condition operators": StringLike
    # matches this value, ArnLike does not, because "*" stays within one component.
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    request = req("someservice:Read", "*", context={"aws:SourceArn": value})
    for operator, expected in [
        ("StringLike", True),
        ("ArnLike", False),
        ("ArnEquals", False),
        ("ArnNotLike", True),
    ]:
        statement = {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {operator: {"aws:SourceArn": pattern}},
        }
        assert statement_matches(statement, request, resource_based=False) is expected, operator
    good = req(
        "someservice:Read",
        "*",
        context={"aws:SourceArn": "arn:aws:someservice:us-east-2:111122223333:finance/q1"},
    )
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"ArnLike": {"aws:SourceArn": pattern}},
    }
    assert statement_matches(statement, good, resource_based=False) is True


# --- date and IP operators ---------------------------------------------------------------

# IAM UG, "Condition operators" -> "Date condition operators".
TOKEN_ISSUED_2020 = {
    "Effect": "Allow",
    "Action": "iam:*AccessKey*",
    "Resource": f"arn:aws:iam::{ACCOUNT}:user/*",
    "Condition": {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}},
}


@pytest.mark.parametrize(
    ("issued", "expected"),
    [
        ("2020-06-01T00:00:00Z", True),
        ("2019-12-31T23:59:59Z", False),
        ("1609459200", True),
        (None, False),
    ],
)
def test_date_greater_than(issued: str | None, expected: bool) -> None:
    context = {} if issued is None else {"aws:TokenIssueTime": issued}
    request = req("iam:ListAccessKeys", USER_ARN, context=context)
    assert statement_matches(TOKEN_ISSUED_2020, request, resource_based=False) is expected


# IAM UG, "Condition operators" -> "IP address condition operators" (IPv4 + IPv6 example).
SOURCE_IP = {
    "Effect": "Allow",
    "Action": "someservice:*",
    "Resource": "*",
    "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}},
}


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.7", True),
        ("2001:db8:1234:5678::1", True),
        ("198.51.100.1", False),
        (None, False),
    ],
)
def test_ip_address(ip: str | None, expected: bool) -> None:
    context = {} if ip is None else {"aws:SourceIp": ip}
    assert (
        statement_matches(
            SOURCE_IP, req("someservice:Do", "*", context=context), resource_based=False
        )
        is expected
    )
    negated = {**SOURCE_IP, "Condition": {"NotIpAddress": SOURCE_IP["Condition"]["IpAddress"]}}
    assert statement_matches(
        negated, req("someservice:Do", "*", context=context), resource_based=False
    ) is (not expected)


# --- multivalued context keys ----------------------------------------------------------

# IAM UG, "Creating a condition that tests multiple key values (set operations)"
# (DynamoDB Thread table).  The doc writes Action "GetItem"/"PutItem"; the
# service prefix is added here.
THREAD = "arn:aws:dynamodb:us-east-1:111122223333:table/Thread"
FOR_ALL_VALUES = identity(
    "role policy thread-reader",
    {
        "Effect": "Allow",
        "Action": "dynamodb:GetItem",
        "Resource": THREAD,
        "Condition": {
            "ForAllValues:StringLike": {
                "dynamodb:requestedAttributes": ["PostDateTime", "Message", "Tags"]
            }
        },
    },
)
FOR_ANY_VALUE = identity(
    "role policy thread-writer",
    {
        "Effect": "Deny",
        "Action": "dynamodb:PutItem",
        "Resource": THREAD,
        "Condition": {
            "ForAnyValue:StringLike": {"dynamodb:requestedAttributes": ["ID", "PostDateTime"]}
        },
    },
)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (["PostDateTime", "Message"], allowed(("role policy thread-reader", "#0"))),
        (["PostDateTime", "UserName"], IMPLICIT_DENY),  # "no match for UserName"
        (None, allowed(("role policy thread-reader", "#0"))),  # empty set: ForAllValues is true
    ],
)
def test_for_all_values(attributes: list[str] | None, expected: Decision) -> None:
    context = {} if attributes is None else {"dynamodb:requestedAttributes": attributes}
    assert evaluate(req("dynamodb:GetItem", THREAD, context=context), [FOR_ALL_VALUES]) == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (["UserName", "Message", "PostDateTime"], denied(("role policy thread-writer", "#0"))),
        (["UserName"], allowed(("admin", "AllowAll"))),
        ([], allowed(("admin", "AllowAll"))),  # empty set: ForAnyValue is false
        (None, allowed(("admin", "AllowAll"))),
    ],
)
def test_for_any_value(attributes: list[str] | None, expected: Decision) -> None:
    context = {} if attributes is None else {"dynamodb:requestedAttributes": attributes}
    assert (
        evaluate(req("dynamodb:PutItem", THREAD, context=context), [ALLOW_ALL, FOR_ANY_VALUE])
        == expected
    )


# IAM UG, "Multivalued context key examples" -> "Deny policy with condition set
# operator ForAllValues"; the expected results are that page's table.
DENY_RESTRICTED_TAGS = identity(
    "role policy tagging",
    {
        "Sid": "DenyRestrictedTags",
        "Effect": "Deny",
        "Action": ["iam:Tag*", "iam:UnTag*"],
        "Resource": ["*"],
        "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}},
    },
)


@pytest.mark.parametrize(
    ("tag_keys", "denied_"),
    [
        (["key1:legal"], False),
        (["key1:hr", "key1:personnel"], False),
        (["key2:audit"], True),
        (None, True),
    ],
)
def test_for_all_values_string_not_like_table(tag_keys: list[str] | None, denied_: bool) -> None:
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    request = req("iam:TagRole", BACKUP_ROLE, context=context)
    expected = (
        denied(("role policy tagging", "DenyRestrictedTags"))
        if denied_
        else allowed(("admin", "AllowAll"))
    )
    assert evaluate(request, [ALLOW_ALL, DENY_RESTRICTED_TAGS]) == expected


def test_multivalued_key_without_set_operator_is_rejected() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:TagKeys": "a"}},
    }
    with pytest.raises(ValueError, match="aws:TagKeys"):
        statement_matches(
            statement,
            req("iam:TagRole", "*", context={"aws:TagKeys": ["a", "b"]}),
            resource_based=False,
        )
    # A single-element list is fine.
    assert (
        statement_matches(
            statement, req("iam:TagRole", "*", context={"aws:TagKeys": ["a"]}), resource_based=False
        )
        is True
    )


# --- malformed input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "operator",
    [
        "StringEqualz",
        "BinaryEquals",
        "NullIfExists",
        "ForAnyValue:Null",
        "ForSomeValues:StringLike",
    ],
)
def test_unknown_or_unsupported_operator_raises(operator: str) -> None:
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {operator: {"aws:SecureTransport": "true"}},
    }
    # Reported even though the action does not match.
    with pytest.raises(ValueError, match=operator):
        statement_matches(statement, req("s3:PutObject", "*"), resource_based=False)


@pytest.mark.parametrize(
    ("statement", "resource_based", "message"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}, False, "identity"),
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, True, "Principal"),
        ({"Effect": "allow", "Action": "*", "Resource": "*"}, False, "Effect"),
        ({"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}, False, "Action"),
        ({"Effect": "Allow", "Action": "*"}, False, "Resource"),
        (
            {
                "Effect": "Allow",
                "Principal": {"Federated": "accounts.google.com"},
                "Action": "*",
                "Resource": "*",
            },
            True,
            "Federated",
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"},
                "Action": "*",
                "Resource": "*",
            },
            True,
            "wildcard",
        ),
    ],
)
def test_malformed_statements_raise(
    statement: dict[str, Any], resource_based: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        statement_matches(statement, req("s3:GetObject", "*"), resource_based=resource_based)


def test_identity_policy_without_principal_raises() -> None:
    policy = LabelledPolicy("orphan", "identity", {"Statement": []})
    with pytest.raises(ValueError, match="orphan"):
        evaluate(req("s3:GetObject", "*"), [policy])


def test_non_numeric_value_for_numeric_operator_raises() -> None:
    request = req("s3:ListBucket", "arn:aws:s3:::example_bucket", context={"s3:max-keys": "ten"})
    with pytest.raises(ValueError, match="ten"):
        statement_matches(MAX_KEYS, request, resource_based=False)


def test_single_statement_object_is_accepted() -> None:
    # "Statement" may be one object rather than a list (as in several IAM UG examples).
    policy = LabelledPolicy("p", "identity", {"Statement": MAX_KEYS}, principal_arn=BACKUP_ROLE)
    request = req("s3:ListBucket", "arn:aws:s3:::example_bucket", context={"s3:max-keys": "1"})
    assert evaluate(request, [policy]) == allowed(("p", "#0"))


# --- policy variables in condition values -------------------------------------------------

# AWS Organizations User Guide, RCP examples ("Enforce identity perimeter"), with the
# organization taken from the resource: ${aws:ResourceOrgID}.
PERIMETER = resource(
    "rcp",
    {
        "Sid": "EnforceOrgIdentities",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": "${aws:ResourceOrgID}"},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    },
)


@pytest.mark.parametrize(("principal_org", "denied_"), [("o-mine", False), ("o-other", True)])
def test_a_policy_variable_takes_the_request_value_of_its_key(principal_org, denied_) -> None:
    context = {"aws:PrincipalOrgID": principal_org, "aws:ResourceOrgID": "o-mine",
               "aws:PrincipalIsAWSService": "false"}
    decision = evaluate(req("s3:GetObject", f"{BUCKET}/x", context=context),
                        [PERIMETER, ALLOW_ALL])
    assert decision == (denied(("rcp", "EnforceOrgIdentities")) if denied_
                        else allowed(("admin", "AllowAll")))


def test_a_policy_variable_without_its_key_or_outside_a_condition_is_refused() -> None:
    with pytest.raises(ValueError, match=r"policy variables need one value.*aws:ResourceOrgID"):
        evaluate(req("s3:GetObject", f"{BUCKET}/x", context={"aws:PrincipalOrgID": "o-x"}),
                 [PERIMETER])
    in_resource = resource("bucket policy", {
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": "arn:aws:s3:::${aws:PrincipalAccount}/*"})
    with pytest.raises(ValueError, match="policy variables are not supported"):
        evaluate(req("s3:GetObject", f"{BUCKET}/x"), [in_resource])


# --- organization guardrails (SCP, RCP) ---------------------------------------------------


def guardrail(kind: str, *statements: dict[str, Any]) -> LabelledPolicy:
    return LabelledPolicy(kind, kind, {"Version": "2012-10-17", "Statement": list(statements)})


SCP_DENY = guardrail("scp", {"Sid": "DenyPolicyChanges", "Effect": "Deny",
                             "Action": "s3:PutBucketPolicy", "Resource": "*"})


def test_an_scp_denies_the_accounts_principals_root_included() -> None:
    for principal in (BACKUP_ROLE, ROOT):
        decision = evaluate(req("s3:PutBucketPolicy", BUCKET, principal=principal),
                            [SCP_DENY, identity("admin", {"Sid": "AllowAll", "Effect": "Allow",
                                                          "Action": "*", "Resource": "*"},
                                                principal=principal)])
        assert decision == denied(("scp", "DenyPolicyChanges"))


def test_an_scp_binds_neither_services_nor_anonymous_requests() -> None:
    for principal in ("service:s3.amazonaws.com", None):
        decision = evaluate(req("s3:PutBucketPolicy", BUCKET, principal=principal), [SCP_DENY])
        assert decision == IMPLICIT_DENY


def test_a_guardrail_allow_grants_nothing() -> None:
    allow = {"Sid": "FullAWSAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}
    assert evaluate(req("s3:GetObject", f"{BUCKET}/x"), [guardrail("scp", allow)]) == \
        IMPLICIT_DENY
    assert evaluate(req("s3:GetObject", f"{BUCKET}/x"),
                    [guardrail("rcp", {**allow, "Principal": "*"})]) == IMPLICIT_DENY


def test_an_rcp_binds_every_principal_anonymous_included() -> None:
    rcp = guardrail("rcp", {"Sid": "DenyAll", "Effect": "Deny", "Principal": "*",
                            "Action": "s3:GetObject", "Resource": "*"})
    for principal in (BACKUP_ROLE, None, "service:s3.amazonaws.com"):
        assert evaluate(req("s3:GetObject", f"{BUCKET}/x", principal=principal), [rcp]) == \
            denied(("rcp", "DenyAll"))
    with pytest.raises(ValueError, match="resource policy statement needs exactly one"):
        evaluate(req("s3:GetObject", f"{BUCKET}/x"),
                 [guardrail("rcp", {"Effect": "Deny", "Action": "*", "Resource": "*"})])
