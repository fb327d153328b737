"""AWS IAM policy evaluation for same-account requests.

Produces the rows of a compliance "scenario table": is a request allowed, and
which statements decided it.  Follows the IAM User Guide pages "Policy
evaluation logic", "IAM JSON policy elements" and "Condition operators".

Conventions (the request side is plain data supplied by the caller):

* ``Request.principal_arn`` is an IAM ARN (user, role, ``...:root`` for the
  root user), ``None`` for an anonymous request, or ``"service:<name>"`` for an
  AWS service principal, e.g. ``"service:backup.amazonaws.com"``, matched by
  ``{"Service": "<name>"}`` and by the wildcards ``"*"`` / ``{"AWS": "*"}``.
* Identity policies apply when ``LabelledPolicy.principal_arn`` equals the
  request's principal exactly; nothing maps role sessions back to roles, and
  no context key is filled in for the caller.
* An account in ``Principal`` (``"123456789012"`` or
  ``"arn:aws:iam::123456789012:root"``) "delegates authority to the account"
  (Principal page): in a Deny it covers every principal of that account; in an
  Allow it grants nothing to the account's IAM users or roles on its own (they
  still need an identity-policy Allow), so it matches only the root user.
  ``NotPrincipal`` entries match exactly (the NotPrincipal page's examples list
  the account ARN next to the one user who is excluded).
* A context key holding an empty list counts as absent.
* Policy variables (``${aws:ResourceOrgID}``) are allowed in condition values
  only, and take the request context's value of their key ("IAM policy
  elements: Variables and tags").
* AWS Organizations policies are guardrails: kind ``"scp"`` (no Principal;
  binds IAM principals, never an anonymous request or an AWS service) and
  ``"rcp"`` (Principal ``"*"``; binds every request on the resource). Only their
  Denies count: an Allow there grants nothing, and the organization's default
  ``FullAWSAccess`` / ``RCPFullAWSAccess`` policies are assumed attached.

Raises ValueError rather than guessing: unknown or unsupported operators,
policy variables outside condition values or whose key the request context
lacks, Federated/CanonicalUser principals, partial wildcards in principals,
multivalued context keys used without ``ForAnyValue:``/``ForAllValues:``, and
malformed statements.

Not modelled: which accounts an SCP or RCP is attached to (the caller decides
by passing it), permission boundaries, session policies, ACLs, cross-account
requests, and the KMS rule that identity policies only count when the key
policy enables them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Any, Literal


@dataclass(frozen=True)
class Request:
    principal_arn: str | None  # None = anonymous
    action: str  # e.g. "s3:GetObject"
    resource: str  # e.g. "arn:aws:s3:::bucket/postgres/x"
    context: Mapping[str, str | list[str]]  # condition keys and their values


@dataclass(frozen=True)
class StatementRef:
    policy: str  # the caller's label for the policy
    sid: str  # the statement's Sid, or "#<index>" (0-based) when it has none


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Literal["explicit-deny", "allow", "implicit-deny"]
    deciding: tuple[StatementRef, ...]


PolicyKind = Literal["identity", "resource", "scp", "rcp"]
GUARDRAILS: tuple[PolicyKind, ...] = ("scp", "rcp")


@dataclass(frozen=True)
class LabelledPolicy:
    label: str
    kind: PolicyKind
    document: Mapping[str, Any]
    principal_arn: str | None = None  # identity policies: the principal attached to

    @cached_property
    def statements(self) -> tuple[Mapping[str, Any], ...]:
        """The document's statements, each validated as `statement_matches` validates it:
        once per policy, not once per request (a report asks thousands of requests of the
        same few documents)."""
        statements = _statements(self)
        for statement in statements:
            _validate(statement, self.kind in ("resource", "rcp"))
        return tuple(statements)


def evaluate(request: Request, policies: Sequence[LabelledPolicy]) -> Decision:
    """Explicit Deny anywhere wins; otherwise any Allow allows; otherwise implicit deny.

    Within one account an Allow from either an identity policy or a resource
    policy is enough ("Policy evaluation for requests within a single account").
    A guardrail (SCP, RCP) can only deny.
    """
    denies: list[StatementRef] = []
    allows: list[StatementRef] = []
    for policy in policies:
        if policy.kind == "identity":
            if policy.principal_arn is None:
                raise ValueError(f"identity policy {policy.label!r} has no principal_arn")
            if policy.principal_arn != request.principal_arn:
                continue
        elif policy.kind == "scp":
            if not _bound_by_scps(request.principal_arn):
                continue
        elif policy.kind not in ("resource", "rcp"):
            raise ValueError(f"policy {policy.label!r}: unknown kind {policy.kind!r}")
        resource_based = policy.kind in ("resource", "rcp")
        for index, statement in enumerate(policy.statements):
            if _applies(statement, request, resource_based=resource_based):
                ref = StatementRef(policy.label, statement.get("Sid") or f"#{index}")
                if statement["Effect"] == "Deny":
                    denies.append(ref)
                elif policy.kind not in GUARDRAILS:
                    allows.append(ref)
    if denies:
        return Decision(False, "explicit-deny", tuple(denies))
    if allows:
        return Decision(True, "allow", tuple(allows))
    return Decision(False, "implicit-deny", ())


def _bound_by_scps(principal_arn: str | None) -> bool:
    """SCPs restrict the IAM users and roles (and root) of member accounts; not anonymous
    requests, not AWS service principals ("Service control policies (SCPs)")."""
    return principal_arn is not None and principal_arn.startswith("arn:")


def statement_matches(
    statement: Mapping[str, Any], request: Request, *, resource_based: bool
) -> bool:
    """True when the statement's Effect applies to the request.

    Structure, condition operators and policy variables are checked first, so
    such a mistake is reported even in a statement that does not apply.
    """
    _validate(statement, resource_based)
    return _applies(statement, request, resource_based=resource_based)


def _applies(statement: Mapping[str, Any], request: Request, *, resource_based: bool) -> bool:
    """`statement_matches` of a statement already validated."""
    if not _element_matches(statement, "Action", request.action, ignore_case=True):
        return False
    if not _element_matches(statement, "Resource", request.resource, ignore_case=False):
        return False
    if resource_based and not _principal_applies(statement, request.principal_arn):
        return False
    return all(
        _condition_holds(operator, key, _scalars(values), request.context)
        for operator, block in statement.get("Condition", {}).items()
        for key, values in block.items()
    )


# --- statements and elements -------------------------------------------------


def _statements(policy: LabelledPolicy) -> list[Mapping[str, Any]]:
    statements = policy.document.get("Statement")
    if isinstance(statements, Mapping):
        return [statements]
    if isinstance(statements, list):
        return statements
    raise ValueError(f"policy {policy.label!r} has no Statement")


def _validate(statement: Mapping[str, Any], resource_based: bool) -> None:
    _reject_variables({k: v for k, v in statement.items() if k != "Condition"})
    condition = statement.get("Condition", {})
    _reject_variables(list(condition) if isinstance(condition, Mapping) else condition)
    for block in condition.values() if isinstance(condition, Mapping) else ():
        _reject_variables(list(block) if isinstance(block, Mapping) else block)
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise ValueError(f"Effect must be Allow or Deny, got {statement.get('Effect')!r}")
    for name in ("Action", "Resource"):
        if (name in statement) == (f"Not{name}" in statement):
            raise ValueError(f"statement needs exactly one of {name} / Not{name}")
    has_principal = "Principal" in statement or "NotPrincipal" in statement
    if not resource_based and has_principal:
        raise ValueError("Principal / NotPrincipal are not allowed in identity policies")
    if resource_based and ("Principal" in statement) == ("NotPrincipal" in statement):
        raise ValueError("resource policy statement needs exactly one of Principal / NotPrincipal")
    condition = statement.get("Condition", {})
    blocks = condition.values() if isinstance(condition, Mapping) else [None]
    if not all(isinstance(block, Mapping) for block in blocks):
        raise ValueError(f"malformed Condition: {condition!r}")
    for operator in condition:
        _parse_operator(operator)


def _reject_variables(node: Any) -> None:
    # Outside condition values a policy variable would need request data we do
    # not model; substituting nothing would silently change the policy's meaning.
    if isinstance(node, str):
        if "${" in node:
            raise ValueError(f"policy variables are not supported: {node!r}")
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _reject_variables(key)
            _reject_variables(value)
    elif isinstance(node, list):
        for item in node:
            _reject_variables(item)


def _element_matches(
    statement: Mapping[str, Any], name: str, value: str, *, ignore_case: bool
) -> bool:
    # Action names are case-insensitive, resource ARNs case-sensitive.
    positive = name in statement
    patterns = _strings(statement[name] if positive else statement[f"Not{name}"], name)
    hit = any(_like(pattern, value, ignore_case) for pattern in patterns)
    return hit if positive else not hit


def _strings(value: Any, what: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{what} must be a string or a list of strings: {value!r}")
    return items


def _scalars(value: Any) -> list[str]:
    # JSON policies may write condition values as true / 1.2; IAM compares text.
    out = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(str(item))
        else:
            raise ValueError(f"unsupported condition value {item!r}")
    return out


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


# --- principals ----------------------------------------------------------------

_ACCOUNT_ROOT = re.compile(r"arn:[^:]+:iam::(\d{12}):root")


def _principal_applies(statement: Mapping[str, Any], principal_arn: str | None) -> bool:
    if "Principal" in statement:
        account_wide = statement["Effect"] == "Deny"
        return _principal_listed(statement["Principal"], principal_arn, account_wide=account_wide)
    return not _principal_listed(statement["NotPrincipal"], principal_arn, account_wide=False)


def _principal_listed(spec: Any, principal_arn: str | None, *, account_wide: bool) -> bool:
    if spec == "*":
        return True
    if not isinstance(spec, Mapping):
        raise ValueError(f"malformed Principal: {spec!r}")
    unsupported = set(spec) - {"AWS", "Service"}
    if unsupported:
        raise ValueError(f"unsupported principal type(s): {sorted(unsupported)}")
    # A list, not a generator: every entry is checked for unsupported wildcards.
    entries = _strings(spec.get("AWS", []), "Principal AWS")
    aws = any([_aws_entry_matches(e, principal_arn, account_wide=account_wide) for e in entries])
    services = _strings(spec.get("Service", []), "Service")
    return aws or principal_arn in {f"service:{name}" for name in services}


def _aws_entry_matches(entry: str, principal_arn: str | None, *, account_wide: bool) -> bool:
    if entry == "*":  # same as "Principal": "*" ("All principals" on the Principal page)
        return True
    if "*" in entry or "?" in entry:
        raise ValueError(f"partial wildcards are not allowed in principals: {entry!r}")
    root = _ACCOUNT_ROOT.fullmatch(entry)
    account = root.group(1) if root else entry if re.fullmatch(r"\d{12}", entry) else None
    if account is None or principal_arn is None:
        return entry == principal_arn
    is_root_user = _ACCOUNT_ROOT.fullmatch(principal_arn) is not None
    return _account_of(principal_arn) == account and (is_root_user or account_wide)


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return (parts[4] or None) if len(parts) >= 6 and parts[0] == "arn" else None


# --- conditions ------------------------------------------------------------------


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def _date(text: str) -> datetime:
    # IAM accepts ISO 8601 or epoch seconds.
    try:
        if text.isdigit():
            moment = datetime.fromtimestamp(int(text), UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _arn_like(value: str, pattern: str) -> bool:
    # Each of the six colon-delimited ARN components is matched separately
    # (Condition operators page, "ARN condition operators").
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(values) == len(patterns) == 6 and all(map(_like, patterns, values))


def _in_network(value: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ValueError(f"bad IP address or range: {value!r} / {cidr!r}") from None


# (request value, policy value) -> matches
_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda v, p: v == p,
    "StringEqualsIgnoreCase": lambda v, p: v.casefold() == p.casefold(),
    "StringLike": lambda v, p: _like(p, v),
    "NumericEquals": lambda v, p: _number(v) == _number(p),
    "NumericLessThan": lambda v, p: _number(v) < _number(p),
    "NumericLessThanEquals": lambda v, p: _number(v) <= _number(p),
    "NumericGreaterThan": lambda v, p: _number(v) > _number(p),
    "NumericGreaterThanEquals": lambda v, p: _number(v) >= _number(p),
    "DateEquals": lambda v, p: _date(v) == _date(p),
    "DateLessThan": lambda v, p: _date(v) < _date(p),
    "DateLessThanEquals": lambda v, p: _date(v) <= _date(p),
    "DateGreaterThan": lambda v, p: _date(v) > _date(p),
    "DateGreaterThanEquals": lambda v, p: _date(v) >= _date(p),
    "Bool": lambda v, p: v.lower() == p.lower(),
    "IpAddress": _in_network,
    "ArnEquals": _arn_like,  # ArnEquals and ArnLike "behave identically"
    "ArnLike": _arn_like,
}
# Negated operator -> the operator it negates.
_NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _parse_operator(operator: str) -> tuple[str | None, str, bool]:
    """Split "ForAnyValue:StringLikeIfExists" into (qualifier, base, if_exists)."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise ValueError(f"unknown condition operator {operator!r}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base.removesuffix("IfExists") if if_exists else base
    if base == "Null" and (qualifier or if_exists):
        raise ValueError(f"{operator!r} is not valid: Null takes no qualifier or IfExists")
    if base != "Null" and base not in _MATCHERS and base not in _NEGATED:
        raise ValueError(f"unknown or unsupported condition operator {operator!r}")
    return qualifier or None, base, if_exists


def _lookup(context: Mapping[str, str | list[str]], key: str) -> list[str] | None:
    # Condition key names are case-insensitive.
    for name, value in context.items():
        if name.lower() == key.lower():
            values = [value] if isinstance(value, str) else list(value)
            return values or None
    return None


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _substitute(value: str, context: Mapping[str, Any]) -> str:
    """A condition value's policy variables, replaced by the request context's values."""

    def replace(match: re.Match[str]) -> str:
        found = _lookup(context, match.group(1))
        if found is None or len(found) != 1:
            raise ValueError(f"policy variables need one value of their key in the request "
                             f"context: {value!r} ({match.group(1)})")
        return found[0]

    return _VARIABLE.sub(replace, value)


def _condition_holds(
    operator: str, key: str, policy_values: list[str], context: Mapping[str, Any]
) -> bool:
    qualifier, base, if_exists = _parse_operator(operator)
    policy_values = [_substitute(value, context) for value in policy_values]
    request_values = _lookup(context, key)
    if base == "Null":  # "true": the key is absent; "false": it is present
        if any(v.lower() not in ("true", "false") for v in policy_values):
            raise ValueError(f"Null takes true or false, got {policy_values!r}")
        return any((v.lower() == "true") == (request_values is None) for v in policy_values)
    negated = base in _NEGATED
    if request_values is None:
        if if_exists:
            return True
        if qualifier is not None:
            # An empty set: ForAllValues is true, ForAnyValue false ("Multivalued
            # context keys" page), whatever the operator.
            return qualifier == "ForAllValues"
        # IAM User Guide, "IAM JSON policy elements: Condition operators":
        # "If the key that you specify in a policy condition is not present in
        # the request context, the values do not match and the condition is
        # false. If the policy condition requires that the key is not matched,
        # such as StringNotLike or ArnNotLike, and the right key is not present,
        # the condition is true."
        return negated
    matcher = _MATCHERS[_NEGATED.get(base, base)]

    def holds(value: str) -> bool:
        # Policy values are ORed; for a negated operator they are NORed
        # ("Conditions with multiple context keys or values").
        hit = any(matcher(value, p) for p in policy_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(holds(v) for v in request_values)
    if qualifier == "ForAnyValue":
        return any(holds(v) for v in request_values)
    if len(request_values) > 1:
        raise ValueError(
            f"context key {key!r} has several values; {operator!r} needs ForAnyValue:/ForAllValues:"
        )
    return holds(request_values[0])
