"""Lint IAM / S3 bucket / KMS key policy documents with parliament.

``lint_policy`` runs parliament (https://github.com/duo-labs/parliament) on a
policy document and sorts each finding into one of two groups:

* ``findings``: real problems that have to be fixed;
* ``accepted``: known parliament false positives. Each one was matched by one
  explicit rule from ``RULES`` below, and the result records which rule it was.

A rule never ignores a whole issue code. It looks at one finding together with
the statement that finding belongs to, and it accepts only the exact statement
shapes it names.

How a finding is mapped to its statement (and Sid): parliament creates one
``parliament.statement.Statement`` per element of the document's ``Statement``
list, in document order, and keeps every statement-level finding on that
object's ``findings`` list. Its own ``location`` only carries line and column
numbers. So we match each finding by object identity to the Statement that
holds it. The position of that Statement gives the original statement mapping,
and from it the ``Sid``. Policy-level findings (for example ``DUPLICATE_SID`` or
``RESOURCE_POLICY_PRIVILEGE_ESCALATION``) belong to no statement, so their
``sid`` is ``None``. The same applies to statements that have no ``Sid``.

What parliament 1.6.4 actually does with the inputs this project uses:

* ``aws:SecureTransport`` is a global key in parliament's table, so the
  canonical ``EnforceSSL`` deny produces no finding at all.
* A JSON number as a condition value (for example ``"s3:TlsVersion": 1.2``)
  makes parliament raise ``TypeError`` (it runs ``re.match`` on the float). We
  therefore pass condition values to parliament as strings. IAM compares
  condition values as strings anyway, so the meaning does not change.
* ``s3:TlsVersion`` with a decimal value (``"1.2"``) gives one
  ``MISMATCHED_TYPE`` per s3 action, because parliament's "Numeric" pattern is
  ``^\\d+$``. ``s3:*`` also expands to ``s3:InitiateReplication`` and
  ``s3:PutAccessPointPublicAccessBlock``, which parliament's data lists without
  ``s3:TlsVersion`` (``UNKNOWN_CONDITION_FOR_ACTION``).
* A trust policy statement has no ``Resource``, so parliament reports
  ``MALFORMED`` "Statement contains neither Resource nor NotResource" and stops
  analysing that statement. It has already checked the Principal, Effect and
  Sid at that point, but not the Action or Condition.
* A KMS key policy statement with ``Resource: "*"`` gives ``RESOURCE_STAR``.

Parliament emits identical findings many times (for example one per expanded
action with the same detail text). Identical entries are collapsed, and the
order of first occurrence is kept.

This module does not write to stdout or stderr. Parliament does not print on
this code path, but its import and its analysis still run with stdout and
stderr redirected, as a defensive measure.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.resources
import io
import json
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal


def _resource_filename(package: str, name: str) -> str:
    return str(importlib.resources.files(package) / name)


# parliament 1.6.4 imports setuptools' pkg_resources for one call, `resource_filename`, made
# twice while it is imported (its IAM data and its config); importing pkg_resources scans every
# installed distribution, about a third of parliament's import time. Unless the real one is
# loaded already, parliament is imported with a module holding just that function (the same
# paths), and nothing else ever sees it.
_PKG_RESOURCES = types.ModuleType("pkg_resources", "parliament's one use of pkg_resources")
_PKG_RESOURCES.resource_filename = _resource_filename  # type: ignore[attr-defined]


@contextlib.contextmanager
def _parliament_import() -> Iterator[None]:
    """Import parliament with the pkg_resources stand-in and without the cyclic collector.

    parliament's IAM table (10 MB of JSON: about 130,000 objects) lives as long as the process
    and holds no reference cycles: collecting while it is built only walks it, and so would
    every later full collection (and the one at exit). So the collector is off while it loads,
    and what is alive then is frozen (gc.freeze) once loaded; reference counting still frees
    whatever is frozen and later dropped."""
    stand_in = "pkg_resources" not in sys.modules
    if stand_in:
        sys.modules["pkg_resources"] = _PKG_RESOURCES
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if stand_in:
            del sys.modules["pkg_resources"]
        if collecting:
            gc.enable()
        gc.freeze()


# parliament loads its IAM data once, at import time. While it does, it leaves
# two files open (ResourceWarning), and in a fresh environment it triggers
# "invalid escape sequence" DeprecationWarnings from its regex literals. This
# project runs pytest with filterwarnings=error, so warnings are ignored for
# this one third-party import only.
with (
    warnings.catch_warnings(),
    contextlib.redirect_stdout(io.StringIO()),
    contextlib.redirect_stderr(io.StringIO()),
    _parliament_import(),
):
    warnings.simplefilter("ignore")
    import parliament

__all__ = [
    "RULES",
    "AcceptedFinding",
    "FalsePositiveRule",
    "LintFinding",
    "LintResult",
    "PolicyKind",
    "condition_scoped",
    "lint_policy",
]

PolicyKind = Literal["identity", "resource", "trust"]


@dataclass(frozen=True)
class LintFinding:
    code: str  # parliament issue code, e.g. "UNKNOWN_CONDITION_FOR_ACTION"
    severity: str  # parliament severity, e.g. "MEDIUM"
    title: str  # parliament title for the code
    detail: str  # parliament detail: the text itself if it is a string, else sorted JSON
    sid: str | None  # Sid of the statement the finding belongs to, if any


@dataclass(frozen=True)
class AcceptedFinding:
    finding: LintFinding
    rule: str  # id of the rule that accepted it
    reason: str


@dataclass(frozen=True)
class LintResult:
    findings: tuple[LintFinding, ...]
    accepted: tuple[AcceptedFinding, ...]


@dataclass(frozen=True)
class _Candidate:
    """What a rule gets to see: one raw finding plus its context."""

    code: str
    detail: Any  # parliament's raw detail (str, list or None)
    statement: Mapping[str, Any] | None  # the original statement, None if policy-level
    kind: PolicyKind


@dataclass(frozen=True)
class FalsePositiveRule:
    id: str
    reason: str
    matches: Callable[[_Candidate], bool]


# --------------------------------------------------------------------------
# Small helpers for reading statements
# --------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _actions(statement: Mapping[str, Any]) -> list[str]:
    return [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]


def _is_deny_all_s3(statement: Mapping[str, Any]) -> bool:
    return (
        statement.get("Effect") == "Deny"
        and "NotAction" not in statement
        and _actions(statement) == ["s3:*"]
        and len(_as_list(statement.get("Action"))) == 1
    )


_UNKNOWN_CONDITION = re.compile(r"^Unknown condition (?P<key>\S+) for action (?P<action>\S+)$")


# --------------------------------------------------------------------------
# Rule 1: canonical-transport-deny
# --------------------------------------------------------------------------

# The two canonical S3 transport guards, which are the whole Condition of a
# `Deny s3:*` statement:
#   {"Bool": {"aws:SecureTransport": "false"}}
#   {"NumericLessThan": {"s3:TlsVersion": 1.2}}   (1.2 or "1.2")
# `s3:*` expands to every S3 action, and parliament's data lacks these keys for
# some of them (s3:InitiateReplication, s3:PutAccessPointPublicAccessBlock). For
# a blanket Deny that does not matter: AWS checks the key on every request that
# carries it, which is the point of the guard.


def _is_canonical_transport_condition(condition: Any) -> bool:
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return False
    ((operator, block),) = condition.items()
    if not isinstance(block, Mapping) or len(block) != 1:
        return False
    ((key, value),) = block.items()
    if operator == "Bool" and key == "aws:SecureTransport":
        return value == "false" or value is False
    if operator == "NumericLessThan" and key == "s3:TlsVersion":
        return (value == 1.2 and not isinstance(value, bool)) or value == "1.2"
    return False


def _canonical_transport_deny(c: _Candidate) -> bool:
    if c.code != "UNKNOWN_CONDITION_FOR_ACTION" or c.statement is None:
        return False
    if not _is_deny_all_s3(c.statement):
        return False
    condition = c.statement.get("Condition")
    if not _is_canonical_transport_condition(condition):
        return False
    m = _UNKNOWN_CONDITION.match(c.detail) if isinstance(c.detail, str) else None
    if m is None or not m.group("action").startswith("s3:"):
        return False
    (block,) = condition.values()
    (key,) = block.keys()
    # The finding has to be about this statement's own key.
    return m.group("key") == key


# --------------------------------------------------------------------------
# Rule 2: decimal-tls-version
# --------------------------------------------------------------------------

# s3:TlsVersion is documented as Numeric, and AWS's own examples compare it
# with 1.2. Parliament's "Numeric" check is the regex ^\d+$, so every decimal
# value is reported as MISMATCHED_TYPE, once per S3 action. We accept only the
# per-key variant of the finding ("s3:TlsVersion requires a value of type
# Numeric"), and only when every s3:TlsVersion value in the statement is a
# plain decimal number. The operator-mismatch variant (for example
# StringEquals on s3:TlsVersion) is still reported.

_TLS_TYPE_MISMATCH = "Type mismatch: s3:TlsVersion requires a value of type Numeric but given "
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")


def _tls_version_values(condition: Any) -> Iterator[Any]:
    if not isinstance(condition, Mapping):
        return
    for block in condition.values():
        if isinstance(block, Mapping):
            for key, value in block.items():
                if isinstance(key, str) and key.lower() == "s3:tlsversion":
                    yield from _as_list(value)


def _decimal_tls_version(c: _Candidate) -> bool:
    if c.code != "MISMATCHED_TYPE" or c.statement is None:
        return False
    if not (isinstance(c.detail, str) and c.detail.startswith(_TLS_TYPE_MISMATCH)):
        return False
    values = list(_tls_version_values(c.statement.get("Condition")))
    return bool(values) and all(
        not isinstance(v, bool)
        and isinstance(v, (int, float, str))
        and _DECIMAL.match(_stringify(v))
        for v in values
    )


# --------------------------------------------------------------------------
# Rule 3: trust-policy-has-no-resource
# --------------------------------------------------------------------------

# Role trust (AssumeRole) policies have no Resource element: the role is the
# resource. Parliament cannot model that and reports MALFORMED "Statement
# contains neither Resource nor NotResource". We accept this only for
# kind="trust" and only when the statement's actions are STS role-assumption
# actions.

_MISSING_RESOURCE_DETAIL = "Statement contains neither Resource nor NotResource"
_TRUST_ACTIONS = frozenset({"sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:TagSession"})


def _trust_policy_has_no_resource(c: _Candidate) -> bool:
    if c.kind != "trust" or c.statement is None:
        return False
    if c.code != "MALFORMED" or c.detail != _MISSING_RESOURCE_DETAIL:
        return False
    if "Resource" in c.statement or "NotResource" in c.statement or "NotAction" in c.statement:
        return False
    raw = _as_list(c.statement.get("Action"))
    return bool(raw) and all(isinstance(a, str) and a in _TRUST_ACTIONS for a in raw)


# --------------------------------------------------------------------------
# Rule 4: kms-key-policy-resource-star
# --------------------------------------------------------------------------

# In a KMS key policy (kind="resource"), Resource "*" means "this key". It is
# the only value AWS allows there, so parliament's RESOURCE_STAR ("unnecessary
# use of Resource *") cannot be fixed. We accept it only when the statement's
# Resource is exactly "*", every action in the statement is a kms: action, and
# every action the finding names is a kms: action. In an identity policy the
# same finding is real (scope it to the key ARN) and is still reported.


def _kms_key_policy_resource_star(c: _Candidate) -> bool:
    if c.kind != "resource" or c.code != "RESOURCE_STAR" or c.statement is None:
        return False
    if _as_list(c.statement.get("Resource")) != ["*"] or "NotAction" in c.statement:
        return False
    raw = _as_list(c.statement.get("Action"))
    named = c.detail if isinstance(c.detail, list) else []
    return (
        bool(raw)
        and all(isinstance(a, str) and a.startswith("kms:") for a in raw)
        and bool(named)
        and all(isinstance(a, str) and a.startswith("kms:") for a in named)
    )


# --------------------------------------------------------------------------
# Rule 5: condition-scoped-resource-star
# --------------------------------------------------------------------------

# Actions whose resource type a call cannot name, granted on "*" and scoped by a condition key,
# as AWS itself grants them: ecs:ListTasks is authorised on container instances, which Fargate
# tasks have none of, so AWS CDK grants it on "*" with ecs:cluster (aws-cdk pull request 3199;
# awsdocs/amazon-ecs-developer-guide issue 211). Accepted only when the key names the resource:
# an ArnEquals on an ARN-typed key of the action's service, without a wildcard (`condition_scope`).


def condition_scope(statement: Mapping[str, Any], action: str) -> str | None:
    """The condition key that names the resources of `action` instead of its Resource: an
    ArnEquals on an ARN-typed condition key of the action's own service that the action
    supports (the Service Authorization Reference, parliament's copy), every value without a
    wildcard or a policy variable; else None."""
    service, _, name = action.partition(":")
    try:
        info = parliament.statement.get_privilege_info(service, name)
    except parliament.UnknownActionException:
        return None
    definition = next((d for d in parliament.iam_definition if d["prefix"] == service), {})
    arn_keys = {c["condition"] for c in definition.get("conditions", []) if c["type"] == "ARN"}
    supported = {key for item in info.get("resource_types", [])
                 for key in item.get("condition_keys", []) if key in arn_keys}
    condition = statement.get("Condition") or {}
    block = condition.get("ArnEquals") if isinstance(condition, Mapping) else None
    for key, values in (block or {}).items():
        concrete = [str(v) for v in _as_list(values)]
        if key in supported and concrete and not any(c in v for v in concrete for c in "*?$"):
            return str(key)
    return None


def condition_scoped(statement: Mapping[str, Any]) -> bool:
    """Every action of the statement has its resource named by a condition key."""
    actions = _as_list(statement.get("Action"))
    return bool(actions) and "NotAction" not in statement and all(
        isinstance(a, str) and condition_scope(statement, a) for a in actions)


def _condition_scoped_resource_star(c: _Candidate) -> bool:
    if c.kind != "identity" or c.code != "RESOURCE_STAR" or c.statement is None:
        return False
    return _as_list(c.statement.get("Resource")) == ["*"] and condition_scoped(c.statement)


RULES: tuple[FalsePositiveRule, ...] = (
    FalsePositiveRule(
        id="canonical-transport-deny",
        reason=(
            "Deny s3:* whose whole Condition is aws:SecureTransport=false or "
            "s3:TlsVersion<1.2: parliament's action data lacks the key for some "
            "S3 actions that s3:* expands to, but a blanket transport Deny is the "
            "AWS-recommended pattern"
        ),
        matches=_canonical_transport_deny,
    ),
    FalsePositiveRule(
        id="decimal-tls-version",
        reason=(
            "s3:TlsVersion is numeric and compared with decimals such as 1.2; "
            "parliament's Numeric type check only accepts integers (^\\d+$)"
        ),
        matches=_decimal_tls_version,
    ),
    FalsePositiveRule(
        id="trust-policy-has-no-resource",
        reason=(
            "role trust policies have no Resource element (the role itself is "
            "the resource); parliament treats the missing Resource as MALFORMED"
        ),
        matches=_trust_policy_has_no_resource,
    ),
    FalsePositiveRule(
        id="kms-key-policy-resource-star",
        reason=(
            'in a KMS key policy Resource "*" means "this key" and is the only '
            "allowed value, so RESOURCE_STAR cannot be fixed there"
        ),
        matches=_kms_key_policy_resource_star,
    ),
    FalsePositiveRule(
        id="condition-scoped-resource-star",
        reason=(
            'an action on "*" whose resource an ArnEquals condition names (ecs:ListTasks with '
            "ecs:cluster: a Fargate task has no container instance, the resource type "
            "parliament expects)"
        ),
        matches=_condition_scoped_resource_star,
    ),
)


# --------------------------------------------------------------------------
# Running parliament
# --------------------------------------------------------------------------


def _stringify(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _plain(value: Any) -> Any:
    """Deep-copy to plain dict/list so json.dumps accepts any Mapping/Sequence."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _numbers_as_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _numbers_as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_strings(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    return value


def _statements(document: Mapping[str, Any]) -> list[Any]:
    raw = document.get("Statement")
    if isinstance(raw, list):
        return raw
    return [] if raw is None else [raw]


def _for_parliament(document: dict[str, Any]) -> str:
    """Serialize the document with condition values converted to strings (see module doc)."""

    def convert(statement: Any) -> Any:
        if isinstance(statement, dict) and "Condition" in statement:
            return {**statement, "Condition": _numbers_as_strings(statement["Condition"])}
        return statement

    raw = document.get("Statement")
    if isinstance(raw, list):
        return json.dumps({**document, "Statement": [convert(s) for s in raw]})
    if raw is not None:
        return json.dumps({**document, "Statement": convert(raw)})
    return json.dumps(document)


def _detail_text(detail: Any) -> str:
    if detail is None:
        return ""
    if isinstance(detail, str):
        return detail
    return json.dumps(detail, sort_keys=True, default=str)


def _dedupe(items: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


def lint_policy(document: Mapping[str, Any], *, kind: PolicyKind) -> LintResult:
    """Run parliament on ``document`` and split findings into real ones and accepted ones."""
    if kind not in ("identity", "resource", "trust"):
        raise ValueError(f"unknown policy kind: {kind!r}")
    return _lint_text(json.dumps(_plain(document)), kind)


# The result is a function of the document's text and kind alone, and parliament is most of the
# report's time: a document seen before (two controls and the report read each one; stack
# variants share most documents) is not analysed again.
@functools.lru_cache(maxsize=1024)
def _lint_text(text: str, kind: PolicyKind) -> LintResult:
    plain = json.loads(text)
    statements = _statements(plain)

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        policy = parliament.analyze_policy_string(
            _for_parliament(plain), ignore_private_auditors=True
        )
        raw_findings = list(policy.findings)

    # Object identity tells us which Statement object holds a finding.
    # parliament.Policy.statements is in document order.
    owner: dict[int, int] = {}
    for index, stmt in enumerate(policy.statements):
        for f in stmt.findings:
            owner[id(f)] = index

    findings: list[LintFinding] = []
    accepted: list[AcceptedFinding] = []
    for f in raw_findings:
        index = owner.get(id(f))
        statement = statements[index] if index is not None and index < len(statements) else None
        if not isinstance(statement, Mapping):
            statement = None
        sid = statement.get("Sid") if statement is not None else None
        settings = parliament.config.get(f.issue, {})
        finding = LintFinding(
            code=f.issue,
            severity=str(settings.get("severity", "")),
            title=str(settings.get("title", "")),
            detail=_detail_text(f.detail),
            sid=sid if isinstance(sid, str) else None,
        )
        candidate = _Candidate(code=f.issue, detail=f.detail, statement=statement, kind=kind)
        rule = next((r for r in RULES if r.matches(candidate)), None)
        if rule is None:
            findings.append(finding)
        else:
            accepted.append(AcceptedFinding(finding=finding, rule=rule.id, reason=rule.reason))

    return LintResult(findings=_dedupe(findings), accepted=_dedupe(accepted))
