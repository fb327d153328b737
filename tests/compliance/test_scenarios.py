"""The scenario table for prod and for the variants that change its answers."""

from __future__ import annotations

from compliance.inventory import build_inventory
from compliance.scenarios import as_rows, evaluate_scenarios
from tests.support.resources import ACCOUNT, declared_of, edit

BUCKET = "backup-primary-policy"
REPLICA = "backup-replica-policy"
BACKUP_WRITE = [(BUCKET, "AllowBackupServerWrite"),
                ("backup-primary-backup-access", "AllowBackupServerWrite")]

KEY = "backup-primary-key"
ADMIN_POLICY = ("administrator identity policy (modelled)", "Modelled")
REPLICA_WRITES = (REPLICA, "DenyReplicaWritesExceptReplication")
RCP = "organization-guard-resource-control-policy"
SCP = "organization-guard-service-control-policy"

PROD_TABLE = [
    ("A plain-HTTP request", "denied", [(BUCKET, "EnforceSSL")]),
    ("A TLS 1.0 request", "denied", [(BUCKET, "DenyOutdatedTLS")]),
    ("Backup role writes a backup", "allowed", BACKUP_WRITE),
    ("…and gets the SSE-KMS data key for it", "allowed",
     [(KEY, "AllowBackupServerKey"), ("backup-primary-backup-access", "AllowBackupServerKey")]),
    # Point 2: the bucket's own key, or no encryption header at all.
    ("Backup role writes naming the bucket's own key", "allowed", BACKUP_WRITE),
    ("Backup role writes naming SSE-S3 (AES256)", "denied", [(BUCKET, "DenyNonKmsEncryption")]),
    ("Backup role writes naming another KMS key", "denied", [(BUCKET, "DenyOtherKmsKey")]),
    ("Backup role writes with a customer-provided key (SSE-C)", "denied",
     [(BUCKET, "DenyCustomerProvidedKeys")]),
    ("Backup role overwrites an existing backup", "allowed", BACKUP_WRITE),
    ("Backup role deletes an object", "allowed", BACKUP_WRITE),
    ("Backup role deletes a version", "denied", [(BUCKET, "DenyDeleteBackup")]),
    # Point 3: keep extends COMPLIANCE retention, within keep.maxDays.
    ("Backup role extends a kept backup's COMPLIANCE retention (keep)", "allowed",
     [(BUCKET, "AllowBackupServerKeepRetention"),
      ("backup-primary-backup-access", "AllowBackupServerKeepRetention")]),
    ("Backup role places a legal hold (keep)", "denied", []),
    ("Backup role sets a GOVERNANCE retention", "denied", []),
    ("Backup role locks a backup for 100 years", "denied",
     [(BUCKET, "DenyRetentionBeyondMaximum")]),
    ("Restore role reads (primary region)", "allowed",
     [(BUCKET, "AllowReadForRestore"), ("backup-primary-restore-access", "AllowReadForRestore")]),
    ("Restore role reads (replica, eu-west-1)", "allowed",
     [(REPLICA, "AllowReadForRestore"), ("backup-replica-restore-access", "AllowReadForRestore")]),
    ("Restore role writes", "denied", []),
    ("Anonymous read", "denied", []),
    ("Anyone strips the Retention tag", "denied", [(BUCKET, "DenyRetentionTagChange")]),
    ("An admin deletes a version", "denied", [(BUCKET, "DenyDeleteBackup")]),
    ("An admin lifts a legal hold", "denied", [(BUCKET, "DenyLegalHoldRemoval")]),
    ("An admin locks a backup for 100 years", "denied", [(BUCKET, "DenyRetentionBeyondMaximum")]),
    ("The break-glass role deletes a version", "denied", [(BUCKET, "DenyDeleteBackup")]),
    ("The deploy role rewrites the bucket policy", "allowed",
     [("deploy identity policy (modelled)", "Modelled")]),
    ("An admin rewrites the bucket policy", "allowed", [ADMIN_POLICY]),
    # Point 1: the replica under the same scrutiny; only replication writes there.
    ("A plain-HTTP request (replica)", "denied", [(REPLICA, "EnforceSSL")]),
    ("Anonymous read (replica)", "denied", []),
    ("Restore role writes (replica)", "denied", [REPLICA_WRITES]),
    ("Backup role writes (replica)", "denied", [REPLICA_WRITES]),
    ("The replication role replicates into the replica", "allowed",
     [(REPLICA, "AllowReplicationDestination"),
      ("backup-replica-replication-access", "AllowReplicationDestination")]),
    ("Another role with s3:Replicate* replicates into the replica", "denied", [REPLICA_WRITES]),
    ("…or writes delete markers into the replica", "denied", [REPLICA_WRITES]),
    ("An admin writes into the replica", "denied", [REPLICA_WRITES]),
    ("An admin writes into the replica naming SSE-S3", "denied",
     [(REPLICA, "DenyNonKmsEncryption"), REPLICA_WRITES]),
    ("An admin changes a replica's retention", "denied", [REPLICA_WRITES]),
    ("An admin places a legal hold in the replica", "denied", [REPLICA_WRITES]),
    ("An admin tags an untagged replica", "denied", [REPLICA_WRITES]),
    ("An admin deletes a version (replica)", "denied",
     [(REPLICA, "DenyDeleteBackup"), REPLICA_WRITES]),
    # Point 5: what the organization guard adds once the management account attaches it.
    ("An admin rewrites the bucket policy, with the organization guard attached", "denied",
     [(RCP, "DenyProtectedBucketChanges")]),
    ("The deploy role rewrites the bucket policy, with the organization guard attached",
     "denied", [(RCP, "DenyProtectedBucketChanges")]),
    ("An admin changes a key's policy, with the organization guard attached", "denied",
     [(RCP, "DenyKeyPolicyChanges")]),
    ("An admin makes the replication role assumable, with the organization guard attached",
     "denied", [(SCP, "DenyExemptRoleChanges")]),
    ("A principal outside the organization reads, with the organization guard attached",
     "denied", [(RCP, "DenyAccessFromOutsideOrganization")]),
    ("Restore role reads, with the organization guard attached", "allowed",
     [(BUCKET, "AllowReadForRestore"), ("backup-primary-restore-access", "AllowReadForRestore")]),
    # Point 4: the alert topic's key admits exactly its publishers.
    ("S3 publishes the primary bucket's delete events to the encrypted alert topic", "allowed",
     [("backup-alerts-key", "AllowS3DeleteEventsKey")]),
    ("Another bucket's events use the alert topic's key", "denied", []),
    ("CloudWatch alarms of this account publish to the encrypted alert topic", "allowed",
     [("backup-alerts-key", "AllowCloudWatchAlarmsKey")]),
    ("EventBridge uses the alert topic's key", "denied", []),
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
    assert table(inventory)[10] == PROD_TABLE[10] == (
        "Backup role deletes a version", "denied", [(BUCKET, "DenyDeleteBackup")])


def test_governance_mode_exposes_bypass_to_a_policy_rewrite(prod_declared):
    resources = edit(prod_declared, "backup-primary-object-lock",
                     lambda inputs: inputs["rule"]["defaultRetention"].update(mode="GOVERNANCE"))
    note = notes(build_inventory(resources))["The deploy role rewrites the bucket policy"]
    assert note.endswith("Exposed under GOVERNANCE: after removing DenyGovernanceBypass it can "
                         "delete locked versions with s3:BypassGovernanceRetention (S3 User "
                         "Guide, \"Bypassing governance mode\"); only COMPLIANCE or the "
                         "organization guard prevents that.")


def test_single_region_stack_has_no_replica_rows(stack_run):
    inventory = build_inventory(declared_of(stack_run("prod", {"replica": {"enabled": False}})))
    questions = [row[0] for row in table(inventory)]
    # "replica" also matches the replication role's rows: no role, no row.
    assert questions == [q for q, _, _ in PROD_TABLE if "replica" not in q]


def test_a_deploy_role_declared_by_the_stack_replaces_the_modelled_one(stack_run):
    run = stack_run("prod", {"github": {"repository": "octo-org/octo-repo",
                                        "environment": "production"}})
    rows = {r["question"]: r for r in as_rows(evaluate_scenarios(build_inventory(
        declared_of(run))))}
    row = rows["The deploy role rewrites the bucket policy"]
    assert (row["principal"], row["decision"]) == (
        "biometrics-backup-prod-github-deploy (declared by the stack)", "allowed")
    assert [d["policy"] for d in row["deciding"]] == ["github-deploy-access"]
    # The guard exempts the declared deploy role, and only it.
    guarded = rows["The deploy role rewrites the bucket policy, with the organization guard "
                   "attached"]
    assert (guarded["decision"], [d["policy"] for d in guarded["deciding"]]) == (
        "allowed", ["github-deploy-access"])
    assert rows["An admin rewrites the bucket policy, with the organization guard "
                "attached"]["decision"] == "denied"


def test_keep_rows_follow_the_protection_setting(stack_run):
    run = stack_run("prod", {"keep": {"protection": "legal-hold", "maxDays": 365}})
    found = {q: (d, s) for q, d, s in table(build_inventory(declared_of(run)))}
    assert found["Backup role places a legal hold (keep)"] == ("allowed", [
        (BUCKET, "AllowBackupServerKeep"), ("backup-primary-backup-access",
                                            "AllowBackupServerKeep")])
    assert found["Backup role extends a kept backup's COMPLIANCE retention (keep)"] == (
        "denied", [])


def test_ecs_task_roles_answer_as_the_host_roles_whose_access_they_have(ecs_declared,
                                                                        prod_declared):
    rows = {row["question"]: (row["decision"], [(d["policy"], d["sid"]) for d in row["deciding"]])
            for row in as_rows(evaluate_scenarios(build_inventory(ecs_declared)))
            if row["question"].startswith("ECS task role")}
    assert rows == {
        "ECS task role (task-postgres) writes a backup": ("allowed", [
            (BUCKET, "AllowBackupServerWrite"),
            ("ecs-role-task-postgres-primary-backup-access", "AllowBackupServerWrite")]),
        "ECS task role (task-drill) writes a backup": ("denied", []),
        "ECS task role (task-drill) records its outcome": ("allowed", [
            (BUCKET, "AllowRestoreServerRecordOutcomes"),
            ("ecs-role-task-drill-primary-restore-access", "AllowRestoreServerRecordOutcomes")]),
        "ECS task role (task-exporter) records an outcome": ("denied", []),
    }
    assert not any(row["question"].startswith("ECS task role")
                   for row in as_rows(evaluate_scenarios(build_inventory(prod_declared))))
