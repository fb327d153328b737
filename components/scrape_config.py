"""Prometheus scrape configuration for the backup runtime, from the same container specs the
`BackupContainers` component deploys: one job per agent process kind, one target per host that
runs it (its metrics address and the port the container publishes), labelled with the host's
name and instance profile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import yaml

from components.container_specs import ContainerSpec
from components.runtime_settings import RuntimeSettings

# The alert rules and the dashboard select on these job names (monitoring/).
JOB_NAMES: Final = {"exporter": "backup-exporter", "schedule": "backup-agent"}
HEADER: Final = ("# Prometheus scrape configuration for the backup runtime, rendered by the "
                 "offline preview\n# from the stack's runtime settings (components/"
                 "scrape_config.py). Merge scrape_configs into\n# your prometheus.yml; "
                 "check it with: promtool check config <file>\n")


def scrape_config(runtime: RuntimeSettings, specs: Sequence[ContainerSpec]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {job: [] for job in JOB_NAMES.values()}
    for spec in specs:
        host = runtime.host(spec.host)
        groups[JOB_NAMES[spec.command[0]]].append({
            "targets": [f"{host.metrics_address}:{spec.host_port}"],
            "labels": {"host": host.name, "role": host.profile},
        })
    return {"scrape_configs": [
        {"job_name": job, "metrics_path": "/metrics", "static_configs": static}
        for job, static in groups.items() if static
    ]}


def to_yaml(document: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
