"""Whatever Pulumi.<stack>.yaml holds, the offline preview runs or refuses it in one line.

The table-driven test mutates the prod stack file by kind — every key deleted, nulled, given
another type, numbers out of range, texts that are no allowed value — and runs each mutation
through the preview's own path in-process: the stack file is read as the CLI reads it, the
config map validated by the function the program calls first (`read_config`), and each distinct
accepted configuration is run through the preview CLI's `main` (the program under the mocks,
the compliance report, the documents written). The contract for every mutation: no exception,
and either a run, or exit 2 with one line `error: <key>: <what is wrong>; allowed: ...`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.program_config import read_config
from contract.reader import InvalidSetting
from review import preview
from review.stack_config import StackFileError, load_stack_config
from tests.support import ROOT

PROD_FILE = ROOT / "Pulumi.prod.yaml"
DELETE = object()
ERROR_LINE = re.compile(r"error: (?P<key>[\w.-]+(:[\w.\[\]-]+)?): (?P<problem>.+)")


PROD_DOCUMENT = yaml.safe_load(PROD_FILE.read_text())


def prod_document() -> dict[str, Any]:
    return copy.deepcopy(PROD_DOCUMENT)


def nodes(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, value
    children = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in children:
        yield from nodes(child, (*path, key))


def swapped(value: Any) -> list[Any]:
    """The same value as other YAML types."""
    if isinstance(value, bool):
        return ["yes", 1]
    if isinstance(value, int):
        return [f"{value}", [value], 1.5]
    if isinstance(value, str):
        return [12345, [value], {"value": value}]
    if isinstance(value, list):
        first = value[0] if value and not isinstance(value[0], dict | list) else "text"
        return [first, {"items": value}]
    return ["text", [value]]


def mutations() -> Iterator[tuple[str, tuple, Any]]:
    for path, value in nodes(prod_document()["config"]):
        if not path:
            continue
        yield "delete", path, DELETE
        yield "null", path, None
        for other in swapped(value):
            yield "type", path, other
        if isinstance(value, int) and not isinstance(value, bool):
            for number in (0, -1, 10**12):
                yield "range", path, number
        if isinstance(value, str):
            yield "enum", path, "NOT-A-VALUE"


def mutated(path: tuple, value: Any) -> dict[str, Any]:
    document = prod_document()
    target = document["config"]
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = copy.deepcopy(value)
    return document


def label(kind: str, path: tuple, value: Any) -> str:
    shown = "<deleted>" if value is DELETE else repr(value)
    return f"{kind} {'.'.join(str(p) for p in path)} = {shown}"


def run_preview(project: Path, stack: str) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = preview.main(["--stack", stack, "--project-dir", str(project),
                             "--out", str(project / "out" / stack)])
    return code, stderr.getvalue()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("project")
    (directory / "infra").symlink_to(ROOT / "infra")
    return directory


def assert_one_clear_line(stderr: str) -> re.Match[str]:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    match = ERROR_LINE.fullmatch(lines[0])
    assert match is not None, lines[0]
    assert "allowed" in match["problem"], lines[0]
    return match


def test_every_mutation_of_the_prod_stack_file_runs_or_is_refused_in_one_line(project):
    tried = refused = accepted = 0
    previews: dict[str, int] = {}  # distinct accepted configuration -> preview exit code
    for number, (kind, path, value) in enumerate(mutations()):
        name = f"m{number}"
        stack_path = project / f"Pulumi.{name}.yaml"
        stack_path.write_text(yaml.dump(mutated(path, value), Dumper=yaml.CSafeDumper,
                                        sort_keys=False))
        tried += 1
        try:
            config, secret_keys = load_stack_config(stack_path)
            stack = read_config(config, secret_keys, stack=name, dry_run=True)
        except InvalidSetting as error:
            refused += 1
            # The same refusal through the preview CLI: exit 2, one line, nothing written.
            code, stderr = run_preview(project, name)
            assert code == 2, label(kind, path, value)
            assert_one_clear_line(stderr)
            assert stderr == f"error: {error}\n", label(kind, path, value)
            assert not (project / "out" / name).exists()
            continue
        accepted += 1
        # The preview's outcome is a function of the validated configuration (and the default
        # region of the mocks): run it once per distinct one.
        key = repr((stack, config.get("aws:region"), sorted(secret_keys)))
        if key not in previews:
            code, stderr = run_preview(project, name)
            assert code in (0, 3), (label(kind, path, value), stderr)
            assert not [line for line in stderr.splitlines()
                        if not line.startswith(("warning: ", "error: mandatory compliance"))]
            assert (project / "out" / name / "summary.md").exists()
            # A null that became an empty rule instead of the default (or a refusal).
            assert not [rendered for rendered in (project / "out" / name).rglob("lifecycle.json")
                        if '"Expiration": {}' in rendered.read_text()], label(kind, path, value)
            previews[key] = code
    print(f"\nstack-file mutations: {tried} tried, {refused} refused, {accepted} accepted as "
          f"valid ({len(previews)} distinct configurations previewed, "
          f"{sum(code == 3 for code in previews.values())} of them failing a mandatory "
          "compliance control)")
    assert tried == refused + accepted
    assert refused > 0 and accepted > 0


# --- the stack file itself -------------------------------------------------------------------

PROD_TEXT = PROD_FILE.read_text()
PROD_LINES = PROD_TEXT.splitlines()


def test_invalid_yaml_is_named_by_line(project):
    (project / "Pulumi.bad.yaml").write_text("config:\n  aws:region: [eu-central-1\n")
    code, stderr = run_preview(project, "bad")
    assert code == 2
    assert stderr.startswith("error: Pulumi.bad.yaml: line 3, column 1: not valid YAML (")
    assert stderr.endswith("); allowed: a YAML mapping with a config key\n")
    assert_one_clear_line(stderr)


@pytest.mark.parametrize(("text", "message"), ids=[
    "not-a-mapping", "config-not-a-mapping", "duplicate-top-key", "duplicate-nested-key",
    "near-miss-namespace", "no-namespace", "yaml-1.1-boolean", "date-is-text",
    "plaintext-secret", "plaintext-database-password", "password-of-unknown-database",
    "text-for-a-list",
], argvalues=[
    ("- just\n- a list\n", "error: Pulumi.bad.yaml: is a YAML list; allowed: a mapping with a "
     "config key"),
    ("config: [a, b]\n", "error: Pulumi.bad.yaml: config: is a YAML list; allowed: a mapping of "
     "<namespace>:<name> keys to values"),
    (PROD_TEXT + "  biometrics-backup:protect: false\n",
     f"error: Pulumi.bad.yaml: line {len(PROD_LINES) + 1}: 'biometrics-backup:protect' appears "
     "twice in one mapping (YAML would keep only the last); allowed: each key once"),
    (PROD_TEXT.replace("        port: 5432\n", "        port: 5432\n        port: 5433\n"),
     f"error: Pulumi.bad.yaml: line {PROD_LINES.index('        port: 5432') + 2}: 'port' appears "
     "twice in one mapping (YAML would keep only the last); allowed: each key once"),
    (PROD_TEXT + "  biometric-backup:protect: false\n",
     "error: biometric-backup:protect: namespace 'biometric-backup' is not read by this program "
     "(did you mean biometrics-backup:protect?); allowed: biometrics-backup, aws, docker, "
     "pulumi"),
    (PROD_TEXT + "  protect: false\n",
     "error: protect: is not a configuration key; allowed: <namespace>:<name>, e.g. "
     "biometrics-backup:protect"),
    (PROD_TEXT.replace("protect: true", "protect: yes"),
     "error: biometrics-backup:protect: got the text 'yes'; allowed: true or false"),
    (PROD_TEXT.replace("biometrics-backup:environment: prod",
                       "biometrics-backup:environment: 2026-01-01"),
     None),  # a date is text, as YAML 1.2 reads it
    (PROD_TEXT + "  biometrics-backup:resticPassword: hunter2\n",
     "error: biometrics-backup:resticPassword: is plain text in the stack file; allowed: an "
     "encrypted value, set with: pulumi config set --secret resticPassword"),
    (PROD_TEXT + "  biometrics-backup:databasePasswords:\n    biometrics: hunter2\n",
     "error: biometrics-backup:databasePasswords: is plain text in the stack file; allowed: an "
     "encrypted value, set with: pulumi config set --secret --path "
     "'databasePasswords.<database>'"),
    (PROD_TEXT + "  biometrics-backup:databasePasswords:\n    other:\n      secure: AAAB\n",
     "error: biometrics-backup:databasePasswords.other: is not a database of runtime.databases; "
     "allowed: biometrics"),
    (PROD_TEXT.replace("        tables: [users, sessions, biometrics_data]",
                       "        tables: users"),
     "error: biometrics-backup:runtime.databases[0].tables: got the text 'users'; allowed: a "
     "list, each a table name (name or schema.name) (write [users])"),
])
def test_the_stack_file_is_read_as_the_cli_reads_it(project, text, message):
    """Each class of stack file the CLI refuses (or reads differently from YAML 1.1)."""
    (project / "Pulumi.bad.yaml").write_text(text)
    code, stderr = run_preview(project, "bad")
    if message is None:
        assert code == 0, stderr
        return
    assert (code, stderr) == (2, message + "\n")
    assert_one_clear_line(stderr)


def test_encrypted_database_passwords_set_the_documented_way_are_used(project):
    """`pulumi config set --secret --path 'databasePasswords.biometrics'` writes a secure value
    per database; offline it is a placeholder in the mounted file, marked secret, no warning."""
    (project / "Pulumi.secrets.yaml").write_text(
        PROD_TEXT + "  biometrics-backup:databasePasswords:\n    biometrics:\n"
                    "      secure: AAABAJ0/c2VjcmV0\n"
                    "  biometrics-backup:resticPassword:\n    secure: AAABAHJlc3RpYw==\n")
    config, secret_keys = load_stack_config(project / "Pulumi.secrets.yaml")
    assert set(secret_keys) == {"biometrics-backup:databasePasswords",
                                "biometrics-backup:resticPassword"}
    assert "AAAB" not in config["biometrics-backup:databasePasswords"]
    stack = read_config(config, secret_keys, stack="secrets", dry_run=True)
    assert stack.secrets_set == ("resticPassword", "databasePasswords.biometrics")
    assert stack.secrets_missing == ("webhookUrl",)
    code, stderr = run_preview(project, "secrets")
    assert code == 0, stderr
    assert [line for line in stderr.splitlines() if "secret" in line] == [
        "warning: biometrics-backup: 1 runtime secret(s) not set, the preview uses a placeholder "
        "for each: webhookUrl (pulumi config set --secret before pulumi up)"]


def test_a_missing_stack_file_is_named(project):
    with pytest.raises(StackFileError) as error:
        load_stack_config(project / "Pulumi.nosuch.yaml")
    assert str(error.value).startswith(
        f"Pulumi.nosuch.yaml: no such stack file in {project}; allowed: ")


@pytest.mark.parametrize(("argv", "message"), [
    (["make", "preview", "STACK=nosuch"],
     f"error: Pulumi.nosuch.yaml: no such stack file in {ROOT}; allowed: local, prod, scale"),
    ([sys.executable, "-m", "review.preview", "--stack", "../etc"],
     "error: --stack: got '../etc'; allowed: a stack name (A-Z a-z 0-9 _ . -)"),
])
def test_the_command_line_names_a_missing_stack(argv, message):
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == message
    assert "Traceback" not in result.stderr


# --- under the real CLI: the engine's config, RunError --------------------------------------

def test_pulumi_up_with_every_secret_set_the_documented_way_declares_the_runtime():
    from review.recording import run_program
    from tests.support import stack_config

    secrets = {f"biometrics-backup:{key}": value for key, value in {
        "resticPassword": "restic-secret", "webhookUrl": "https://hooks.example/secret",
        "databasePasswords": '{"biometrics": "db-secret"}'}.items()}
    run = run_program(ROOT / "infra", stack="prod", config={**stack_config("prod"), **secrets},
                      secret_keys=tuple(secrets), preview=False)
    assert len(run.of_type("docker:index/container:Container")) == 3
    assert run.warnings == [w for w in run.warnings if "is not set" not in w]


def test_the_program_refuses_as_a_run_error_from_the_engines_environment(monkeypatch, prod):
    """The language host hands config over in PULUMI_CONFIG and the secret keys in
    PULUMI_CONFIG_SECRET_KEYS; a refusal is a pulumi.RunError, which it prints as one line
    without a traceback (pulumi-language-python-exec: `except pulumi.RunError`)."""
    import json

    import pulumi

    from review.recording import StackRun, run_program
    from tests.support import stack_config

    config = {**stack_config("prod"), "biometrics-backup:resticPassword": "hunter2"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    run = StackRun()
    with pytest.raises(pulumi.RunError) as raised:
        run_program(ROOT / "infra", stack="prod", config={}, run=run)
    assert str(raised.value) == (
        "biometrics-backup:resticPassword: is plain text in the stack file; allowed: an "
        "encrypted value, set with: pulumi config set --secret resticPassword")
    assert run.resources == []
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS",
                       json.dumps(["biometrics-backup:resticPassword"]))
    assert len(run_program(ROOT / "infra", stack="prod", config={}).resources) == \
        len(prod.resources)
