"""The scenario table for prod and for the variants that change its answers."""

from __future__ import annotations

from compliance.inventory import build_inventory
from compliance.scenarios import as_rows, evaluate_scenarios
from tests.compliance.conftest import ACCOUNT, declared_of, edit

BUCKET = "backup-primary-policy"
REPLICA = "backup-replica-policy"
BACKUP_WRITE = [(BUCKET, "AllowBackupServerWrite"),
                ("backup-primary-backup-access", "AllowBackupServerWrite")]

PROD_TABLE = [
    ("A plain-HTTP request", "denied", [(BUCKET, "EnforceSSL")]),
    ("A TLS 1.0 request", "denied", [(BUCKET, "DenyOutdatedTLS")]),
    ("Backup role writes a backup", "allowed",
     BACKUP_WRITE),
    ("…and gets the SSE-KMS data key for it", "allowed",
     [("backup-primary-key", "AllowBackupServerKey"),
      ("backup-primary-backup-access", "AllowBackupServerKey")]),
    ("Backup role overwrites an existing backup", "allowed",
     BACKUP_WRITE),
    ("Backup role deletes an object", "allowed",
     BACKUP_WRITE),
    ("Backup role deletes a version", "denied", [(BUCKET, "DenyDeleteBackup")]),
    ("Restore role reads (primary region)", "allowed",
     [(BUCKET, "AllowReadForRestore"), ("backup-primary-restore-access", "AllowReadForRestore")]),
    ("Restore role reads (replica, eu-west-1)", "allowed",
     [(REPLICA, "AllowReadForRestore"), ("backup-replica-restore-access", "AllowReadForRestore")]),
    ("Restore role writes", "denied", []),
    ("Restore role writes (replica)", "denied", [(REPLICA, "DenyDirectWrites")]),
    ("Anonymous read", "denied", []),
    ("Anyone strips the Retention tag", "denied", [(BUCKET, "DenyRetentionTagChange")]),
    ("The break-glass role deletes a version", "denied", [(BUCKET, "DenyDeleteBackup")]),
    ("The deploy role rewrites the bucket policy", "allowed",
     [("deploy identity policy (modelled)", "Modelled")]),
]


def table(inventory):
    return [(row["question"], row["decision"],
             [(d["policy"], d["sid"]) for d in row["deciding"]])
            for row in as_rows(evaluate_scenarios(inventory))]


def notes(inventory):
    return {row["question"]: row["note"] for row in as_rows(evaluate_scenarios(inventory))}


def test_prod_table(prod_inventory):
    assert table(prod_inventory) == PROD_TABLE


def test_prod_notes_say_what_object_lock_adds(prod_inventory):
    found = notes(prod_inventory)
    assert found["Backup role overwrites an existing backup"] == (
        "Allowed: the PUT adds a new current version; versioning keeps the old one as "
        "noncurrent and Object Lock COMPLIANCE 30 days keeps it undeletable until its retention "
        "ends; lifecycle then expires it (NoncurrentVersionExpiration).")
    assert found["Backup role deletes a version"] == (
        "Denied by policy; Object Lock COMPLIANCE 30 days would refuse it within retention even "
        "without the Deny.")
    assert found["The deploy role rewrites the bucket policy"].endswith(
        "Not exposed: under COMPLIANCE (30 days) no one can delete or shorten the retention of "
        "a locked version, whatever the policy.")


def test_configured_break_glass_role_may_delete_a_version(stack_run):
    glass = f"arn:aws:iam::{ACCOUNT}:role/break-glass"
    run = stack_run("prod", {"roles": {"backup": "backup-server", "restore": "restore-server",
                                       "walArchiver": "wal-archiver",
                                       "replication": "biometrics-backups-replication",
                                       "breakGlassArn": glass}})
    inventory = build_inventory(declared_of(run))
    row = next(r for r in as_rows(evaluate_scenarios(inventory))
               if r["question"] == "The break-glass role deletes a version")
    assert (row["principal"], row["decision"], row["deciding"]) == (
        "break-glass role", "allowed",
        [{"policy": "break-glass identity policy (modelled)", "sid": "Modelled"}])
    assert row["note"] == (
        "The stack names this role in the Denies' ArnNotEquals exception. Object Lock "
        "COMPLIANCE 30 days: no one, root included, can delete a locked version before its "
        "retention ends.")
    # Everyone else is still denied.
    assert table(inventory)[6] == PROD_TABLE[6]


def test_governance_mode_exposes_bypass_to_a_policy_rewrite(prod_declared):
    resources = edit(prod_declared, "backup-primary-object-lock",
                     lambda inputs: inputs["rule"]["defaultRetention"].update(mode="GOVERNANCE"))
    note = notes(build_inventory(resources))["The deploy role rewrites the bucket policy"]
    assert note.endswith("Exposed under GOVERNANCE: after removing DenyGovernanceBypass it can "
                         "delete locked versions with s3:BypassGovernanceRetention (facts §1); "
                         "only COMPLIANCE or an SCP prevents that.")


def test_single_region_stack_has_no_replica_rows(stack_run):
    inventory = build_inventory(declared_of(stack_run("prod", {"replica": {"enabled": False}})))
    questions = [row[0] for row in table(inventory)]
    assert questions == [q for q, _, _ in PROD_TABLE if "replica" not in q]


def test_a_deploy_role_declared_by_the_stack_replaces_the_modelled_one(stack_run):
    run = stack_run("prod", {"github": {"repository": "octo-org/octo-repo",
                                        "environment": "production"}})
    row = as_rows(evaluate_scenarios(build_inventory(declared_of(run))))[-1]
    assert (row["question"], row["principal"], row["decision"]) == (
        "The deploy role rewrites the bucket policy",
        "biometrics-backup-prod-github-deploy (declared by the stack)", "allowed")
    assert [d["policy"] for d in row["deciding"]] == ["github-deploy-access"]
