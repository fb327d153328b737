"""`backup-agent run files`: restic backup of a file set, its content hashes, forget/prune, check.

The hashes the drill compares against are recorded *inside* the repository (a second, tagged
snapshot holding `manifest.json`), so they are encrypted like the data and expire with it.
Files are hashed before and after the backup; only files whose content did not change while
restic read them are listed (the others are counted as unstable), so a live tree cannot make
the drill flap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from backup_agent import tools
from contract.agent_settings import AgentSettings, FileSet, Storage

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
    restic(settings, storage, ["check", f"--read-data-subset={file_set.check_subset}"])
    log.info("file set %s: snapshot %s, %d files hashed, %d changed during the backup",
             file_set.name, snapshot_id, len(stable), len(manifest["unstable"]))
    return FilesOutcome(snapshot_id=snapshot_id, files=len(stable),
                        unstable=len(manifest["unstable"]))


def snapshots(settings: AgentSettings, storage: Storage, file_set: FileSet) -> list[dict]:
    result = restic(settings, storage, ["snapshots", "--json", "--host", file_set.hostname,
                                        "--tag", file_set_tag(file_set)])
    return json.loads(result.stdout or "[]")


def restore_and_compare(settings: AgentSettings, storage: Storage, file_set: FileSet,
                        target: Path) -> dict[str, int]:
    """Restore the newest snapshot with --verify and compare it with its recorded hashes."""
    listing = snapshots(settings, storage, file_set)
    manifests = {tag: s for s in listing if MANIFEST_TAG in s.get("tags", [])
                 for tag in s["tags"] if tag.startswith("snapshot:")}
    # The newest snapshot whose hashes were recorded (a job that died in between leaves one
    # without; the next job's snapshot supersedes it).
    data = [s for s in listing
            if MANIFEST_TAG not in s.get("tags", []) and snapshot_tag(s["id"]) in manifests]
    if not data:
        raise RuntimeError(f"file set {file_set.name}: no snapshot with recorded hashes")
    newest = max(data, key=lambda s: s["time"])
    try:
        manifest = json.loads(restic(settings, storage, [
            "dump", manifests[snapshot_tag(newest["id"])]["id"], f"/{MANIFEST_NAME}"]).stdout)
        restic(settings, storage, ["restore", newest["id"], "--target", str(target), "--verify"])
    except tools.ToolError as error:  # restic names the files (or packs) it could not read
        raise RuntimeError(f"file set {file_set.name}: snapshot {newest['id'][:8]}: "
                           f"{error}") from error
    restored = hash_tree(str(target) + path for path in newest["paths"])
    expected = {str(target) + path: digest for path, digest in manifest["files"].items()}
    wrong = sorted(path for path, digest in expected.items() if restored.get(path) != digest)
    if wrong:
        raise RuntimeError(f"file set {file_set.name}: {len(wrong)} restored files differ from "
                           f"the snapshot's hashes, e.g. {wrong[0]}")
    return {"files": len(expected), "unstable": len(manifest["unstable"])}
