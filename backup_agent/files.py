"""`backup-agent run files`: restic backup of a file set, its content hashes, forget/prune, check.

The hashes the drill compares against are recorded *inside* the repository (a second, tagged
snapshot holding `manifest.json`), so they are encrypted like the data and expire with it.
Files are hashed before and after the backup; only files whose content did not change while
restic read them are listed (the others are counted as unstable), so a live tree cannot make
the drill flap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backup_agent import records, tools
from backup_agent.picks import Pick, Point
from contract.agent_settings import AgentSettings, FileSet, Storage
from contract.restic import rotation_groups

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_TAG = "manifest"


@dataclass(frozen=True)
class FilesOutcome:
    snapshot_id: str
    files: int
    unstable: int


def file_set_tag(file_set: FileSet) -> str:
    return f"fileset:{file_set.name}"


def snapshot_tag(snapshot_id: str) -> str:
    # restic 0.14's backup summary prints the short id, newer versions the full one.
    return f"snapshot:{snapshot_id[:8]}"


def hash_tree(paths: Iterable[str]) -> dict[str, str]:
    hashes = {}
    for root in paths:
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                        digest.update(block)
                hashes[path] = digest.hexdigest()
    return hashes


def restic(settings: AgentSettings, storage: Storage, args: list[str], *, check: bool = True,
           stdin: bytes | None = None) -> tools.Result:
    return tools.run(
        [settings.restic_binary, *tools.restic_read_only_flags(settings), *args],
        tools.restic_env(settings, storage), check=check, stdin=stdin,
    )


def ensure_repository(settings: AgentSettings, storage: Storage) -> None:
    probe = restic(settings, storage, ["cat", "config"], check=False)
    if probe.returncode == 0:
        return
    if not tools.restic_repository_missing(probe):
        raise tools.ToolError(probe.argv, probe.returncode, probe.stderr)
    log.info("no restic repository at %s: initialising", storage.restic_repository)
    restic(settings, storage, ["init"])


def _summary_snapshot_id(stdout: str) -> str:
    for line in reversed(stdout.splitlines()):
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return message["snapshot_id"]
    raise RuntimeError("restic backup printed no summary with a snapshot_id")


def run_backup(settings: AgentSettings, file_set: FileSet) -> FilesOutcome:
    storage = settings.primary
    ensure_repository(settings, storage)
    before = hash_tree(file_set.paths)
    tags = [arg for tag in (file_set_tag(file_set), *file_set.tags) for arg in ("--tag", tag)]
    result = restic(settings, storage, ["backup", "--json", "--host", file_set.hostname, *tags,
                                        *file_set.paths])
    snapshot_id = _summary_snapshot_id(result.stdout)
    after = hash_tree(file_set.paths)
    stable = {path: digest for path, digest in before.items() if after.get(path) == digest}
    manifest = {"snapshot": snapshot_id, "files": stable,
                "unstable": sorted((before.keys() | after.keys()) - stable.keys())}
    restic(settings, storage, [
        "backup", "--stdin", "--stdin-filename", MANIFEST_NAME, "--host", file_set.hostname,
        "--tag", file_set_tag(file_set), "--tag", MANIFEST_TAG, "--tag", snapshot_tag(snapshot_id),
    ], stdin=json.dumps(manifest).encode())
    keep = file_set.keep
    restic(settings, storage, [
        "forget", "--host", file_set.hostname, "--tag", file_set_tag(file_set),
        "--keep-daily", str(keep.daily), "--keep-weekly", str(keep.weekly),
        "--keep-monthly", str(keep.monthly), "--prune",
    ])
    subset = check_data(settings, file_set)
    log.info("file set %s: snapshot %s, %d files hashed, %d changed during the backup, "
             "data subset %s read", file_set.name, snapshot_id, len(stable),
             len(manifest["unstable"]), subset)
    return FilesOutcome(snapshot_id=snapshot_id, files=len(stable),
                        unstable=len(manifest["unstable"]))


def check_data(settings: AgentSettings, file_set: FileSet) -> str:
    """`restic check --read-data-subset`: the file set's fixed subset, or for `rotate:<t>` the
    next of t parts, advanced only when that part read clean (a damaged part is read again by
    the next run, until repaired). Returns the subset read."""
    groups = rotation_groups(file_set.check_subset)
    if groups is None:
        restic(settings, settings.primary, ["check", f"--read-data-subset={file_set.check_subset}"])
        return file_set.check_subset
    position = records.rotation(settings, file_set.name, groups)
    subset = f"{position.next}/{groups}"
    restic(settings, settings.primary, ["check", f"--read-data-subset={subset}"])
    records.write_rotation(settings, file_set.name, position.advanced(time.time()))
    return subset


def snapshots(settings: AgentSettings, storage: Storage, file_set: FileSet) -> list[dict]:
    result = restic(settings, storage, ["snapshots", "--json", "--host", file_set.hostname,
                                        "--tag", file_set_tag(file_set)])
    return json.loads(result.stdout or "[]")


def _snapshot_time(snapshot: dict) -> float:
    return dt.datetime.fromisoformat(snapshot["time"]).timestamp()


def choose_snapshot(file_set: FileSet, data: list[dict], pick: Pick | None) -> dict:
    """The newest snapshot, or for drillPick random-within the one `pick` (a new one if None)
    chooses among those of the window."""
    if file_set.drill_pick == "latest":
        return max(data, key=lambda s: s["time"])
    pick = pick or Pick.new(dt.datetime.now(dt.UTC))
    points = [Point(s["id"], _snapshot_time(s)) for s in data]
    chosen = pick.choose(file_set.name, points, file_set.drill_window_days)
    if chosen is None:
        raise RuntimeError(f"file set {file_set.name}: pick {pick.id}: no snapshot with recorded "
                           f"hashes in the {file_set.drill_window_days} days before "
                           f"{pick.window_end.isoformat()}")
    log.info("file set %s: pick %s chose snapshot %s of %d in %d days", file_set.name, pick.id,
             chosen.id[:8], len(points), file_set.drill_window_days)
    return next(s for s in data if s["id"] == chosen.id)


def restore_and_compare(settings: AgentSettings, storage: Storage, file_set: FileSet,
                        target: Path, pick: Pick | None = None) -> dict[str, Any]:
    """Restore the chosen snapshot with --verify and compare it with its recorded hashes."""
    listing = snapshots(settings, storage, file_set)
    manifests = {tag: s for s in listing if MANIFEST_TAG in s.get("tags", [])
                 for tag in s["tags"] if tag.startswith("snapshot:")}
    # Only snapshots whose hashes were recorded can be picked (a job that died in between
    # leaves one without; the next job's snapshot supersedes it).
    data = [s for s in listing
            if MANIFEST_TAG not in s.get("tags", []) and snapshot_tag(s["id"]) in manifests]
    if not data:
        raise RuntimeError(f"file set {file_set.name}: no snapshot with recorded hashes")
    chosen = choose_snapshot(file_set, data, pick)
    try:
        manifest = json.loads(restic(settings, storage, [
            "dump", manifests[snapshot_tag(chosen["id"])]["id"], f"/{MANIFEST_NAME}"]).stdout)
        restic(settings, storage, ["restore", chosen["id"], "--target", str(target), "--verify"])
    except tools.ToolError as error:  # restic names the files (or packs) it could not read
        raise tools.RestoreFailed(chosen["id"], f"file set {file_set.name}: snapshot "
                                  f"{chosen['id'][:8]}: {error}") from error
    restored = hash_tree(str(target) + path for path in chosen["paths"])
    expected = {str(target) + path: digest for path, digest in manifest["files"].items()}
    wrong = sorted(path for path, digest in expected.items() if restored.get(path) != digest)
    if wrong:
        raise tools.RestoreFailed(chosen["id"], f"file set {file_set.name}: snapshot "
                                  f"{chosen['id'][:8]}: {len(wrong)} restored files differ "
                                  f"from the snapshot's hashes, e.g. {wrong[0]}")
    return {"files": len(expected), "unstable": len(manifest["unstable"]),
            "snapshot": chosen["id"]}
