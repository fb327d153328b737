"""The Prometheus scrape configuration: built from the same container specs the stack deploys.
(The preview writing it and promtool accepting it: tests/test_language_host.py.)"""

from __future__ import annotations

import pytest

from components.container_specs import SCHEDULER_HOST_PORT, container_specs
from components.scrape_config import scrape_config
from components.settings import ConfigError, parse_settings

from .conftest import with_runtime


def targets(raw: dict) -> dict[str, list[tuple[str, dict]]]:
    settings = parse_settings(raw, stack="prod")
    document = scrape_config(settings.runtime, container_specs(settings))
    return {job["job_name"]: [(target, group["labels"]) for group in job["static_configs"]
                              for target in group["targets"]]
            for job in document["scrape_configs"]}


def test_each_host_is_scraped_at_its_published_ports_with_host_and_role():
    raw = with_runtime(**{"hosts.0.metricsAddress": "10.0.1.5", "exporter.port": 9200})
    raw["runtime"]["hosts"].append({"name": "backup-2", "instanceProfile": "backup",
                                    "dockerHost": "tcp://backup-2.internal:2376",
                                    "certPath": "/etc/docker/tls/backup-2"})
    raw["runtime"]["fileSets"][0]["host"] = "backup-2"
    found = targets(raw)
    assert found == {
        "backup-exporter": [("restore-1.internal:9200", {"host": "restore-1", "role": "restore"})],
        "backup-agent": [(f"10.0.1.5:{SCHEDULER_HOST_PORT}",
                          {"host": "backup-1", "role": "backup"}),
                         (f"restore-1.internal:{SCHEDULER_HOST_PORT}",
                          {"host": "restore-1", "role": "restore"}),
                         (f"backup-2.internal:{SCHEDULER_HOST_PORT}",
                          {"host": "backup-2", "role": "backup"})],
    }


@pytest.mark.parametrize(("changes", "message"), [
    ({"hosts.0.dockerHost": "unix:///var/run/docker.sock"},
     "is required for dockerHost 'unix:///var/run/docker.sock'"),
    ({"hosts.0.metricsAddress": "http://backup-1:9101"},
     "got the text 'http://backup-1:9101'; allowed: a host name or IPv4 address"),
])
def test_a_host_without_a_reachable_metrics_address_is_refused(changes, message):
    with pytest.raises(ConfigError) as error:
        parse_settings(with_runtime(**changes), stack="prod")
    assert error.value.key == "biometrics-backup:runtime.hosts[0].metricsAddress"
    assert message in str(error.value)
