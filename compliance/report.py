"""The compliance report of one stack: `compliance.md` and its JSON twin, from the offline preview.

The report runs every control of the registry over the recorded resources, applies the stack's
waivers (a waiver needs a reason in the stack config and is listed), lints every generated
policy document with parliament, evaluates the scenario table and prices the buckets. A
mandatory control that fails (or cannot be evaluated) without a waiver fails the report.

Waiver ids are checked here, not in `components.settings`: the registry lives in compliance/, and
components must not depend on the checks that judge them (data flows one way). A waiver only
has an effect where controls run (this report, the CrossGuard pack), so that is where an
unknown id is refused — as a `ConfigError` naming `waivers[i].control`, before any evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from compliance import costs, scenarios
from compliance.controls import ControlResult, controls_by_id, run_controls
from compliance.inventory import Inventory
from components.config_reader import ConfigError
from components.runtime_settings import RuntimeSettings

FAILING: Final = ("fail", "unknown")


class WaiverLike(Protocol):
    control: str
    reason: str


@dataclass(frozen=True)
class Report:
    stack: str
    inventory: Inventory
    results: tuple[ControlResult, ...]
    waivers: dict[str, str]  # control id -> reason
    lint: tuple[dict[str, Any], ...]
    scenario_rows: tuple[dict[str, Any], ...]
    cost: costs.CostModel

    def effective(self, result: ControlResult) -> str:
        if result.status in FAILING and result.id in self.waivers:
            return "waived"
        return result.status

    def mandatory_failures(self) -> list[str]:
        return [r.id for r in self.results
                if r.control.mandatory and self.effective(r) in FAILING]

    @property
    def passed(self) -> bool:
        return not self.mandatory_failures()


def validate_waivers(waivers: Iterable[WaiverLike]) -> dict[str, str]:
    known = controls_by_id()
    result: dict[str, str] = {}
    for index, waiver in enumerate(waivers):
        if waiver.control not in known:
            raise ConfigError(f"waivers[{index}].control",
                              f"{waiver.control!r} is not a control id; allowed: "
                              + ", ".join(sorted(known)))
        result[waiver.control] = waiver.reason
    return result


def lint_documents(inventory: Inventory) -> list[dict[str, Any]]:
    """parliament on every policy document, with the false-positive rule that accepted each."""
    from compliance.controls import lint

    rows = []
    for policy in inventory.policies:
        result = lint(policy, inventory)
        rows.append({
            "resource": policy.resource.name,
            "kind": policy.kind,
            "findings": [{"code": f.code, "severity": f.severity, "sid": f.sid,
                          "detail": f.detail} for f in result.findings],
            "accepted": [{"code": a.finding.code, "sid": a.finding.sid, "rule": a.rule}
                         for a in result.accepted],
        })
    return rows


def build_report(stack: str, inventory: Inventory, waivers: Sequence[WaiverLike] = (),
                 volumes: costs.Volumes | None = None,
                 runtime: RuntimeSettings | None = None) -> Report:
    """`runtime` (the stack's runtime settings) gives the cost model its ECS jobs."""
    waived = validate_waivers(waivers)
    has_source = any(b.label not in inventory.replication_destinations()
                     for b in inventory.buckets_of("backup"))
    return Report(
        stack=stack,
        inventory=inventory,
        results=tuple(run_controls(inventory)),
        waivers=waived,
        lint=tuple(lint_documents(inventory)),
        scenario_rows=tuple(scenarios.as_rows(scenarios.evaluate_scenarios(inventory)))
        if has_source else (),
        cost=costs.cost_model(inventory, volumes or costs.Volumes(), runtime=runtime),
    )


# --- rendering -----------------------------------------------------------------------------

_STATUS_TEXT: Final = {"pass": "pass", "fail": "**FAIL**", "n/a": "n/a", "unknown": "**UNKNOWN**",
                       "waived": "waived", "manual": "manual"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    counts = {status: sum(1 for r in report.results if report.effective(r) == status)
              for status in ("pass", "fail", "unknown", "n/a", "waived", "manual")}
    failures = report.mandatory_failures()
    verdict = "PASS" if report.passed else "FAIL"
    lines = [
        f"# Compliance review of stack `{report.stack}`", "",
        f"**Verdict: {verdict}** — {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['unknown']} unknown, {counts['n/a']} not applicable, {counts['waived']} "
        f"waived, {counts['manual']} manual (rendered for someone else to apply), of "
        f"{len(report.results)} controls. Mandatory controls failing: "
        f"{', '.join(failures) if failures else 'none'}.", "",
        "Generated by `python -m review.preview --stack "
        f"{report.stack}` from the offline preview: the stack program runs under mocks, "
        "the AWS account is the placeholder 111122223333, and every document below is the "
        "exact text `pulumi up` would send. The same controls run in `pulumi preview "
        "--policy-pack policy/`. See docs/compliance.md for how to read this report.", "",
        "## Waivers", "",
    ]
    if report.waivers:
        lines += ["| Control | Reason (from the stack config) | Control result |",
                  "|---|---|---|"]
        by_id = {r.id: r for r in report.results}
        lines += [f"| {cid} | {_cell(reason)} | {by_id[cid].status} |"
                  for cid, reason in sorted(report.waivers.items())]
    else:
        lines.append("None: every control is enforced for this stack.")
    lines += ["", "## Controls", "",
              "| Control | Title | Result | Severity | Mandatory | Scope | Frameworks |",
              "|---|---|---|---|---|---|---|"]
    for result in report.results:
        c = result.control
        lines.append(f"| `{c.id}` | {_cell(c.title)} | {_STATUS_TEXT[report.effective(result)]}"
                     f" | {c.severity} | {'yes' if c.mandatory else 'no'} | {c.scope.name} | "
                     f"{', '.join(c.frameworks) or '—'} |")
    lines += ["", "## Evidence", ""]
    for result in report.results:
        lines += [f"### `{result.id}` — {result.control.title}", ""]
        if result.status == "n/a":
            lines += [f"Not applicable: {result.reason}.", ""]
            continue
        for finding in result.findings:
            sids = f" (Sid: {', '.join(finding.sids)})" if finding.sids else ""
            lines.append(f"- {finding.status}: **{finding.subject}** — {finding.evidence}{sids}")
        lines.append("")
    lines += ["## parliament", "",
              "Every generated policy document, linted with parliament. Findings a documented "
              "rule of `compliance/lint.py` accepts as false positives are listed with the rule; "
              "anything else is a finding.", "",
              "| Document | Kind | Findings | Accepted false positives (rule) |",
              "|---|---|---|---|"]
    for row in report.lint:
        findings = "; ".join(f"{f['severity']} {f['code']} ({f['sid']}): {f['detail']}"
                             for f in row["findings"]) or "none"
        rules: dict[str, int] = {}
        for accepted in row["accepted"]:
            rules[accepted["rule"]] = rules.get(accepted["rule"], 0) + 1
        accepted_text = ", ".join(f"{rule} x{n}" for rule, n in rules.items()) or "—"
        lines.append(f"| {row['resource']} | {row['kind']} | {_cell(findings)} | "
                     f"{accepted_text} |")
    lines += ["", "## Scenario table", ""]
    if report.scenario_rows:
        lines += ["Each request evaluated with AWS's documented policy-evaluation logic "
                  "(`compliance/evaluation.py`: an explicit Deny anywhere wins, then any Allow, "
                  "else implicit deny) over the bucket policy, the requesting role's own "
                  "policies and, for KMS, the key policy. All requests use HTTPS with TLS 1.3 "
                  "unless the row says otherwise.", "",
                  "| Request | Principal | Action | Decision | Deciding statement | Note |",
                  "|---|---|---|---|---|---|"]
        for row in report.scenario_rows:
            deciding = ", ".join(f"{d['policy']}: {d['sid']}" for d in row["deciding"]) or \
                "none (implicit deny)"
            lines.append(f"| {_cell(row['question'])} | {row['principal']} | `{row['action']}` | "
                         f"**{row['decision']}** | {_cell(deciding)} | {_cell(row['note'])} |")
    else:
        lines.append("No backup bucket is written directly: no scenario applies.")
    lines += ["", "What this evaluation does not model:", "",
              *(f"- {item}" for item in scenarios.NOT_MODELLED),
              "", "## Cost model", "", *costs.as_markdown(report.cost)]
    if report.inventory.unclassified_buckets:
        lines += ["", "## Buckets without a bucket-role tag", "",
                  "No control judges these (their role is unknown):", "",
                  *(f"- {b.name}" for b in report.inventory.unclassified_buckets)]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    return {
        "stack": report.stack,
        "verdict": "pass" if report.passed else "fail",
        "mandatoryFailures": report.mandatory_failures(),
        "waivers": [{"control": cid, "reason": reason}
                    for cid, reason in sorted(report.waivers.items())],
        "controls": [{
            "id": r.id,
            "title": r.control.title,
            "severity": r.control.severity,
            "scope": r.control.scope.name,
            "frameworks": list(r.control.frameworks),
            "mandatory": r.control.mandatory,
            "status": report.effective(r),
            "result": r.status,
            "reason": r.reason or None,
            "findings": [{"subject": f.subject, "status": f.status, "evidence": f.evidence,
                          "sids": list(f.sids)} for f in r.findings],
        } for r in report.results],
        "lint": list(report.lint),
        "scenarios": list(report.scenario_rows),
        "notModelled": list(scenarios.NOT_MODELLED),
        "cost": costs.as_json(report.cost),
    }


def policy_pack_config(report: Report) -> dict[str, str]:
    """The stack's waivers for CrossGuard: each waived control's policy becomes advisory
    (`pulumi preview --policy-pack policy/ --policy-pack-config <this file>`)."""
    return {control: "advisory" for control in sorted(report.waivers)}


def write_report(report: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    markdown, twin = out / "compliance.md", out / "compliance.json"
    pack_config = out / "policy-pack-config.json"
    markdown.write_text(to_markdown(report))
    twin.write_text(json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n")
    pack_config.write_text(json.dumps(policy_pack_config(report), indent=2) + "\n")
    return [markdown, twin, pack_config]
