"""Everything the stack program reads from the engine, checked before anything is declared.

`read_config` takes the whole config map (every namespace, as the engine hands it over) and the
keys the engine marks secret; it returns the validated settings and which runtime secrets are
set, or raises one ConfigError. The offline preview runs the same program, so it refuses the
same things. Checks beyond `parse_settings`:
- namespaces: a key outside this project's namespace and the providers' (`aws`, `docker`,
  `pulumi`) is refused, so `biometric-backup:protect` is not silently ignored;
- secrets: a secret key (`SECRET_CONFIG_KEYS`) given as plain text is refused with the command
  that sets it encrypted; `databasePasswords` must name the runtime's databases; `pulumi up`
  (not a preview) refuses a secret the runtime needs and does not have.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from components.container_specs import database_secret, restic_secret, webhook_secret
from components.layout import PROJECT
from components.settings import (
    AWS_REGIONS,
    SECRET_CONFIG_KEYS,
    ConfigError,
    StackSettings,
    check_known_keys,
    parse_settings,
)

NAMESPACES: Final = (PROJECT, "aws", "docker", "pulumi")
SET_SECRET: Final = {
    "resticPassword": "pulumi config set --secret resticPassword",
    "webhookUrl": "pulumi config set --secret webhookUrl 'https://...'",
    "databasePasswords": "pulumi config set --secret --path 'databasePasswords.<database>'",
}


@dataclass(frozen=True)
class StackConfig:
    settings: StackSettings
    # Secret keys the runtime needs that are set ("databasePasswords.<db>" per database), and
    # those it needs that are not (a preview shows placeholders for them).
    secrets_set: tuple[str, ...]
    secrets_missing: tuple[str, ...]


def set_secret_command(key: str) -> str:
    return SET_SECRET[key.split(".", 1)[0]].replace("<database>", key.partition(".")[2]
                                                    or "<database>")


def _check_namespaces(keys: Collection[str]) -> None:
    for key in keys:
        namespace, colon, name = key.partition(":")
        if not colon or not name:
            raise ConfigError(key, f"is not a configuration key; allowed: <namespace>:<name>, "
                              f"e.g. {PROJECT}:protect", full_key=True)
        if namespace not in NAMESPACES:
            near = difflib.get_close_matches(namespace, NAMESPACES, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}:{name}?)" if near else ""
            raise ConfigError(key, f"namespace {namespace!r} is not read by this program{hint}; "
                              "allowed: " + ", ".join(NAMESPACES), full_key=True)


def _required_secrets(settings: StackSettings) -> list[str]:
    """What the containers mount (components.container_specs names the files and keys)."""
    runtime = settings.runtime
    if runtime is None:
        return []
    keys = [restic_secret().secret] if runtime.file_sets else []
    keys += [database_secret(d.name).secret for d in runtime.databases]
    if runtime.webhook:
        keys.append(webhook_secret().secret)
    return keys


def _secrets_set(project: Mapping[str, Any], secret_keys: Collection[str],
                 settings: StackSettings) -> list[str]:
    """The secret keys that are set, checked without ever showing a secret's value."""
    found = []
    for key in SECRET_CONFIG_KEYS:
        if project.get(key) is None:
            continue
        if f"{PROJECT}:{key}" not in secret_keys:
            raise ConfigError(key, "is plain text in the stack file; allowed: an encrypted "
                              f"value, set with: {set_secret_command(key)}")
        if key != "databasePasswords":
            if not isinstance(project[key], str) or not project[key]:
                raise ConfigError(key, f"is not text; allowed: text, set with: "
                                  f"{set_secret_command(key)}")
            found.append(key)
            continue
        passwords = project[key]
        if isinstance(passwords, str):
            try:
                passwords = json.loads(passwords)
            except json.JSONDecodeError:
                passwords = None
        databases = [d.name for d in settings.runtime.databases] if settings.runtime else []
        if not isinstance(passwords, Mapping):
            raise ConfigError(key, "is not an object of database names; allowed: one password "
                              f"per database, set with: {set_secret_command(key)}")
        for name, password in passwords.items():
            if name not in databases:
                raise ConfigError(f"{key}.{name}", "is not a database of runtime.databases; "
                                  "allowed: " + (", ".join(databases) or "no database here"))
            if not isinstance(password, str) or not password:
                raise ConfigError(f"{key}.{name}", "is not text; allowed: a password, set with: "
                                  f"{set_secret_command(f'{key}.{name}')}")
            found.append(f"{key}.{name}")
    return found


def read_config(config: Mapping[str, Any], secret_keys: Collection[str], *, stack: str,
                dry_run: bool) -> StackConfig:
    """Validate the whole config map (full keys) before the program declares anything."""
    _check_namespaces(config)
    region = config.get("aws:region")
    if region is not None and region not in AWS_REGIONS:
        raise ConfigError("aws:region", f"got {region!r}; allowed: "
                          + ", ".join(sorted(AWS_REGIONS)), full_key=True)
    project = {key.partition(":")[2]: value for key, value in config.items()
               if key.startswith(f"{PROJECT}:") and value is not None}
    check_known_keys(project)
    settings = parse_settings({k: v for k, v in project.items() if k not in SECRET_CONFIG_KEYS},
                              stack=stack)
    present = _secrets_set(project, secret_keys, settings)
    required = _required_secrets(settings)
    missing = [key for key in required if key not in present]
    if missing and not dry_run:
        raise ConfigError(missing[0], "is required by runtime and not set; allowed: an "
                          f"encrypted value, set with: {set_secret_command(missing[0])}")
    return StackConfig(settings, tuple(k for k in required if k in present), tuple(missing))


def engine_config() -> tuple[dict[str, Any], set[str]]:
    """The whole config map and its secret keys as the program receives them: from the language
    host (PULUMI_CONFIG, PULUMI_CONFIG_SECRET_KEYS) or set directly (the offline preview)."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env())
    secret |= {key for key in values if runtime_config.is_config_secret(key)}
    return values, secret
