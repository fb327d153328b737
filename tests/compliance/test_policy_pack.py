"""The CrossGuard pack (policy/): validators fed the resources the mocks record.

Per control: the prod stack passes (or is not applicable), an edited stack fails, and unknown
values are reported through pulumi_policy's own UnknownValueError, never as a pass or a failure.
The last test drives the analyzer servicer with a real AnalyzeStack request, as the engine does.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs
from pulumi_policy.policy import _NotApplicableError, _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from compliance.controls import REGISTRY, controls_by_id, run_control
from compliance.inventory import Declared, Unknown, build_inventory
from policy import controls_pack as pack
from tests.support import ROOT
from tests.support.control_cases import FAILING_EDITS, PROD_STATUSES, unknown_outputs
from tests.support.ecs_cases import ECS_FAILING_EDITS, ECS_STATUSES
from tests.support.resources import edit, edit_policy, without_sid


def _wire(value: Any) -> Any:
    """Recorded inputs as the engine serializes them: Unknown → pulumi_policy's sentinel."""
    if isinstance(value, Unknown):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(item) for item in value]
    return value


def policy_resources(resources: list[Declared],
                     unknown: tuple[str, ...] = ()) -> list[PolicyResource]:
    """What the engine hands a stack policy: props behind the unknown-checking proxy, parents
    and property dependencies linked; inputs named in `unknown` replaced by pulumi_policy's
    unknown sentinel."""
    by_urn: dict[str, PolicyResource] = {}
    for resource in resources:
        props = {key: UNKNOWN_STRING_VALUE if key in unknown else _wire(value)
                 for key, value in resource.inputs.items()}
        by_urn[resource.urn] = PolicyResource(resource.type, unknown_checking_proxy(props),
                                              resource.urn, resource.name, None, None, None,
                                              [], {})
    for resource in resources:
        if resource.parent in by_urn:
            by_urn[resource.urn].parent = by_urn[resource.parent]
        by_urn[resource.urn].property_dependencies = {
            key: [by_urn[urn] for urn in urns]
            for key, urns in resource.property_dependencies.items()}
    return list(by_urn.values())


def run_policy(control_id: str, resources: list[PolicyResource]) -> tuple[str, list[str]]:
    """(outcome, violation messages): outcome is ok, n/a or unknown."""
    violations: list[str] = []
    policy = next(p for p in pack.policies() if p.name == control_id)
    try:
        policy.validate(StackValidationArgs(resources), lambda message, urn=None:
                        violations.append(message))
    except _NotApplicableError:
        return "n/a", violations
    except UnknownValueError:
        return "unknown", violations
    return "ok", violations


def test_pack_has_one_policy_per_control_with_its_enforcement_level():
    policies = pack.policies()
    assert [p.name for p in policies] == [c.id for c in REGISTRY]
    levels = {p.name: p.enforcement_level for p in policies}
    assert levels["s3-ssl-only"] == EnforcementLevel.MANDATORY
    assert levels["s3-delete-event-notifications"] == EnforcementLevel.ADVISORY
    assert all(levels[c.id] == (EnforcementLevel.MANDATORY if c.mandatory
                                else EnforcementLevel.ADVISORY) for c in REGISTRY)


@pytest.mark.parametrize("control_id", list(PROD_STATUSES))
def test_prod_passes_every_policy(prod_declared, control_id):
    outcome, violations = run_policy(control_id, policy_resources(prod_declared))
    assert violations == []
    assert outcome == ("n/a" if PROD_STATUSES[control_id] == "n/a" else "ok")


# The ECS placement: hand-built (tests.support.ecs_resources), its policies judged like prod's.
ECS_CONTROLS = [c.id for c in REGISTRY if c.check.__module__ == "compliance.controls.ecs"]
# pulumi_policy hands stack policies their properties with secrets unwrapped (AnalyzeStack
# deserializes without proxy_secrets): a secret-built input cannot be told from plain text
# there. The offline report sees the engine's secret marks; that case runs there only.
PACK_ECS_EDITS = [case for case in ECS_FAILING_EDITS
                  if "is built from a secret value" not in case[2][0][1]]
EDITS = [("prod", *case) for case in FAILING_EDITS] + [("ecs", *case) for case in PACK_ECS_EDITS]


@pytest.mark.parametrize("control_id", [*ECS_CONTROLS, "iam-restore-role-read-only"])
def test_the_ecs_stack_passes_every_ecs_policy(ecs_declared, control_id):
    outcome, violations = run_policy(control_id, policy_resources(ecs_declared))
    assert (outcome, violations, ECS_STATUSES[control_id]) == ("ok", [], "pass")


@pytest.mark.parametrize(("stack", "control_id", "change", "expected"), EDITS,
                         ids=[f"{s}-{c}-{i}" for i, (s, c, _, _) in enumerate(EDITS)])
def test_an_edit_is_a_violation(request, stack, control_id, change, expected):
    resources = change(request.getfixturevalue(f"{stack}_declared"))
    outcome, violations = run_policy(control_id, policy_resources(resources))
    assert outcome == "ok"
    findings = run_control(controls_by_id()[control_id], build_inventory(resources)).findings
    sids = [f" (Sid: {', '.join(f.sids)})" if f.sids else "" for f in findings
            if f.status == "fail"]
    assert violations == [f"{subject}: {evidence}{suffix}"
                          for (subject, evidence), suffix in zip(expected, sids, strict=True)]


def test_ecs_cases_left_to_the_offline_report_are_only_the_secret_marks():
    assert len(ECS_FAILING_EDITS) - len(PACK_ECS_EDITS) == 1


@pytest.mark.parametrize(("stack", "control_id"), [*(("prod", c) for c in PROD_STATUSES),
                                                   *(("ecs", c) for c in ECS_CONTROLS)])
def test_unknown_values_are_unknown_not_passed_nor_violations(request, stack, control_id):
    # A real first preview: ARNs, ids and everything built from them are unknown.
    resources = unknown_outputs(request.getfixturevalue(f"{stack}_declared"))
    expected = run_control(controls_by_id()[control_id], build_inventory(resources)).status
    outcome, violations = run_policy(control_id, policy_resources(resources))
    assert violations == []
    assert outcome == {"pass": "ok", "n/a": "n/a", "unknown": "unknown"}[expected]


def test_a_failure_is_reported_even_when_other_values_are_unknown(prod_declared):
    resources = edit(prod_declared, "backup-primary-versioning", lambda inputs: inputs.update(
        versioningConfiguration={"status": "Suspended"}))
    outcome, violations = run_policy("s3-versioning",
                                     policy_resources(unknown_outputs(resources)))
    assert (outcome, violations) == (
        "ok", ["biometrics-backups (backup-primary-bucket): backup-primary-versioning: status "
               "'Suspended'"])
    outcome, violations = run_policy("s3-ssl-only", policy_resources(unknown_outputs(
        edit_policy(resources, "backup-primary-policy", without_sid("EnforceSSL")))))
    assert (outcome, violations) == ("unknown", [])  # the policy text itself is unknown


def _analyze_request(resources: list[Declared], unknown: tuple[str, ...]) -> Any:
    from pulumi.runtime.proto import analyzer_pb2

    request = analyzer_pb2.AnalyzeStackRequest()
    for resource in resources:
        props = struct_pb2.Struct()
        props.update({key: UNKNOWN_STRING_VALUE if key in unknown else json.loads(
            json.dumps(value)) for key, value in resource.inputs.items()})
        request.resources.append(analyzer_pb2.AnalyzerResource(
            type=resource.type, properties=props, urn=resource.urn, name=resource.name,
            parent=resource.parent))
    return request


def test_engine_path_reports_unknowns_as_advisory_and_failures_as_mandatory(prod_declared):
    servicer = _PolicyAnalyzerServicer(pack.PACK_NAME, "0.1.0", pack.policies(["s3-ssl-only",
                                       "s3-versioning"]), EnforcementLevel.MANDATORY, None,
                                       None, None, None, None, None, None)
    resources = edit(prod_declared, "backup-replica-access-logs-versioning",
                     lambda inputs: inputs.update(versioningConfiguration={"status": "Suspended"}))
    response = servicer.AnalyzeStack(_analyze_request(resources, unknown=("policy",)), None)
    diagnostics = sorted((d.policyName, d.enforcementLevel, d.message)
                         for d in response.diagnostics)
    from pulumi.runtime.proto import analyzer_pb2

    assert diagnostics[0][:2] == ("s3-ssl-only", analyzer_pb2.ADVISORY)
    assert diagnostics[0][2].startswith(
        "can't run policy 's3-ssl-only' from policy pack 'biometrics-backup-compliance@v0.1.0' "
        "during preview: string value at .biometrics-backups (backup-primary-bucket): "
        "backup-primary-policy.policy is unknown during preview")
    assert diagnostics[1] == (
        "s3-versioning", analyzer_pb2.MANDATORY,
        "Versioning is enabled (SecurityHub S3.14, CKV_AWS_21)\n"
        "biometrics-backups-replica-access-logs (backup-replica-access-logs): "
        "backup-replica-access-logs-versioning: status 'Suspended'")
    assert len(diagnostics) == 2


@pytest.fixture()
def served_pack():
    """policy/__main__.py started as the engine starts it: it prints its port, then serves.
    The test stops the process it started, by its PID."""
    import subprocess

    # -u: pulumi_policy writes the port without flushing; the engine runs Python unbuffered.
    process = subprocess.Popen([sys.executable, "-u", str(ROOT / "policy" / "__main__.py")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=ROOT / "policy")
    try:
        port = int(process.stdout.readline().decode().strip())
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()


def test_the_entry_point_serves_the_pack_over_grpc(served_pack, prod_declared):
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{served_pack}") as channel:
        stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert info.name == "biometrics-backup-compliance"
        assert [p.name for p in info.policies] == [c.id for c in REGISTRY]
        resources = edit(prod_declared, "backup-primary-ownership", lambda inputs: inputs.update(
            rule={"objectOwnership": "ObjectWriter"}))
        response = stub.AnalyzeStack(_analyze_request(resources, unknown=()), timeout=60)
    assert [(d.policyName, d.enforcementLevel, d.message) for d in response.diagnostics] == [(
        "s3-acls-disabled", analyzer_pb2.MANDATORY,
        "ACLs are disabled (BucketOwnerEnforced) (SecurityHub S3.12, CKV2_AWS_65)\n"
        "biometrics-backups (backup-primary-bucket): backup-primary-ownership: objectOwnership "
        "is 'ObjectWriter'")]
