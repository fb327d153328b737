"""The CrossGuard policies, built from the control registry (compliance/controls/).

One StackValidationPolicy per control: the controls judge relations (a bucket and its
versioning, a role and the policies naming it), so they need the whole stack, exactly as the
offline report sees it. Mandatory controls are mandatory policies, the others advisory.

Unknown values: in a real first preview, ARNs and policy documents built from them are often
unknown (under the offline mocks they never are). pulumi_policy marks them with sentinel strings
and raises `UnknownValueError` when a validator touches one through its property proxy. Here the
resources are converted first, unknowns becoming `compliance.inventory.Unknown`; a control that
needs one reports "unknown" for that subject. The policy then reports every definite failure as
a violation and re-raises `UnknownValueError` for the rest, which the engine shows as an advisory
"can't run policy ... during preview: <property> can't be known" diagnostic: an unknown value
neither passes silently nor blocks a preview. Stack policies run again at the end of
`pulumi up`, when every value is known.

A "manual" finding (the organization guard: right, but for the management account to apply) is
no violation: the pack cannot see the management account either; a broken guard fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)
from pulumi_policy.secret import Secret

from compliance.controls import REGISTRY, Control, run_control
from compliance.inventory import Declared, Unknown, build_inventory

PACK_NAME: Final = "biometrics-backup-compliance"
# The sentinel strings pulumi_policy puts where a value is unknown (pulumi_policy/proxy.py).
UNKNOWN_SENTINELS: Final = frozenset({
    UNKNOWN_ARCHIVE_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE,
})


def _plain(value: Any, path: str) -> Any:
    """Proxied props → plain data; unknown values → Unknown(path), secrets → their value."""
    if isinstance(value, Secret):
        value = value.value
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        return Unknown(path)
    if isinstance(value, Mapping):
        result = {}
        for key in value:
            try:
                item = value[key]
            except UnknownValueError:
                result[key] = Unknown(f"{path}.{key}".lstrip("."))
                continue
            result[key] = _plain(item, f"{path}.{key}".lstrip("."))
        return result
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = []
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                items.append(Unknown(f"{path}[{index}]"))
                continue
            items.append(_plain(item, f"{path}[{index}]"))
        return items
    return value


def declared(resources: Sequence[PolicyResource]) -> list[Declared]:
    return [Declared(urn=r.urn, type=r.resource_type, name=r.name,
                     inputs=_plain(r.props, ""), parent=r.parent.urn if r.parent else "",
                     property_dependencies={key: tuple(d.urn for d in dependencies)
                                            for key, dependencies in
                                            (r.property_dependencies or {}).items()})
            for r in resources]


def validator(control: Control) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = list(args.resources)
        result = run_control(control, build_inventory(declared(resources)))
        if result.status == "n/a":
            args.not_applicable(result.reason)
        for finding in result.findings:
            if finding.status == "fail":
                sids = f" (Sid: {', '.join(finding.sids)})" if finding.sids else ""
                report_violation(f"{finding.subject}: {finding.evidence}{sids}", None)
        unknown = [f for f in result.findings if f.status == "unknown"]
        if unknown:
            raise UnknownValueError(UNKNOWN_STRING_VALUE,
                                    [f"{f.subject}: {f.evidence}" for f in unknown])

    return validate


def policy(control: Control) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=control.id,
        description=control.title
        + (f" ({', '.join(control.frameworks)})" if control.frameworks else ""),
        validate=validator(control),
        enforcement_level=(EnforcementLevel.MANDATORY if control.mandatory
                           else EnforcementLevel.ADVISORY),
        severity=Severity(control.severity),
        tags=list(control.frameworks),
    )


def policies(ids: Sequence[str] | None = None) -> list[StackValidationPolicy]:
    """The pack: every control of the registry (or the selected ids), never a copy of one."""
    selected = [c for c in REGISTRY if ids is None or c.id in ids]
    return [policy(c) for c in selected]
