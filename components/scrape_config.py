"""Prometheus scrape configuration for the backup runtime, from the same container specs the
`BackupContainers` component deploys: one job per agent process kind, one target per host that
runs it (its metrics address and the port the container publishes), labelled with the host's
name and instance profile. An exporter on ECS is found through DNS instead: its service
registers each task's address as an A record in the Cloud Map namespace (`dns_sd_configs`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import yaml

from components.container_specs import ContainerSpec
from components.ecs_specs import exporter_service_names
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
    jobs = [{"job_name": job, "metrics_path": "/metrics", "static_configs": static}
            for job, static in groups.items() if static]
    if runtime.ecs is not None and runtime.exporter_host is None:
        service, dns_name = exporter_service_names(runtime.ecs)
        jobs.append({
            "job_name": JOB_NAMES["exporter"], "metrics_path": "/metrics",
            "dns_sd_configs": [{"names": [dns_name], "type": "A",
                                "port": runtime.metrics_port}],
            # The labels a static target carries: the alert rules and dashboard read them.
            "relabel_configs": [{"target_label": "host", "replacement": service},
                                {"target_label": "role", "replacement": "restore"}],
        })
    return {"scrape_configs": jobs}


def to_yaml(document: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
