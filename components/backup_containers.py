"""BackupContainers: the backup image and the agent's containers on each Docker host.

One pulumi-docker provider per host (runtime.hosts), so the runtime grows past one machine.
Containers get no AWS keys (the host's instance profile, reached through IMDSv2 with hop limit
2), no docker.sock, read-only root filesystems and read-only mounts of what they back up; the
restic password, database passwords and webhook URL arrive as secret Outputs written into files
(`uploads`), so state keeps them encrypted and no environment holds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_specs import (
    AGENT_UID,
    CONTAINER_METRICS_PORT,
    LOG_OPTIONS,
    SETTINGS_PATH,
    STATE_DIR,
    ContainerSpec,
)
from components.layout import PROJECT, TYPE_PREFIX
from components.program_config import StackConfig
from components.runtime_settings import RuntimeSettings

PLACEHOLDER = "[secret {key}: set with pulumi config set --secret]"


@dataclass(frozen=True)
class RuntimeSecrets:
    """Secret Outputs by config key; `databasePasswords.<db>` for each database."""

    values: Mapping[str, pulumi.Output[str]]


def missing_secrets_warning(keys: Sequence[str]) -> str:
    """One line for every runtime secret a preview has no value for (a stack with 50
    databases would otherwise print 50 lines)."""
    return (f"{PROJECT}: {len(keys)} runtime secret(s) not set, the preview uses a placeholder "
            f"for each: {', '.join(sorted(keys))} (pulumi config set --secret before pulumi up)")


def read_runtime_secrets(config: pulumi.Config, stack: StackConfig) -> RuntimeSecrets:
    """Called from the stack program before any resource is declared (components never read
    config). `read_config` has already refused a missing secret for `pulumi up`; a preview gets
    a placeholder for each, and a warning."""
    values: dict[str, pulumi.Output[str]] = {}
    passwords = config.get_secret_object("databasePasswords")
    for key in stack.secrets_set:
        name, _, database = key.partition(".")
        if name == "databasePasswords":
            assert passwords is not None
            values[key] = passwords.apply(lambda p, database=database: p[database])
        else:
            values[key] = config.require_secret(key)
    if stack.secrets_missing:
        pulumi.log.warn(missing_secrets_warning(stack.secrets_missing))
    for key in stack.secrets_missing:
        values[key] = pulumi.Output.secret(PLACEHOLDER.format(key=key))
    return RuntimeSecrets({key: pulumi.Output.secret(value) for key, value in values.items()})


class BackupContainers(pulumi.ComponentResource):
    def __init__(self, name: str, runtime: RuntimeSettings, specs: Sequence[ContainerSpec],
                 secrets: RuntimeSecrets, *, build_context: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:BackupContainers", name, None, opts)
        self.providers: dict[str, docker.Provider] = {}
        self.containers: dict[str, docker.Container] = {}
        for host in runtime.hosts:
            host_specs = [s for s in specs if s.host == host.name]
            if not host_specs:
                continue
            provider = docker.Provider(f"{name}-{host.name}-docker", host=host.docker_host,
                                       cert_path=host.cert_path,
                                       opts=pulumi.ResourceOptions(parent=self))
            self.providers[host.name] = provider
            on_host = pulumi.ResourceOptions(parent=self, provider=provider)
            image = docker.Image(
                f"{name}-{host.name}-image",
                image_name=runtime.image,
                build=docker.DockerBuildArgs(context=build_context,
                                             dockerfile="docker/backup-agent/Dockerfile",
                                             platform="linux/amd64"),
                skip_push=True,  # built on the host itself; no registry credentials needed
                opts=on_host,
            )
            state = docker.Volume(f"{name}-{host.name}-state", name="backup-agent-state",
                                  opts=on_host)
            for spec in host_specs:
                self.containers[spec.name] = self._container(
                    name, spec, image, state, secrets, on_host)
        self.register_outputs({
            "containers": {key: c.name for key, c in self.containers.items()},
        })

    @staticmethod
    def _container(name: str, spec: ContainerSpec, image: docker.Image, state: docker.Volume,
                   secrets: RuntimeSecrets, opts: pulumi.ResourceOptions) -> docker.Container:
        uploads = [docker.ContainerUploadArgs(file=SETTINGS_PATH, content=spec.settings_json,
                                              permissions="0444")]
        uploads += [
            docker.ContainerUploadArgs(file=secret.path, content=secrets.values[secret.secret],
                                       owner=AGENT_UID, group=AGENT_UID, permissions="0400")
            for secret in spec.secret_files
        ]
        return docker.Container(
            f"{name}-{spec.name}",
            name=spec.name,
            image=image.image_name,
            command=list(spec.command),
            labels=[docker.ContainerLabelArgs(label=key, value=value)
                    for key, value in spec.labels],
            user=f"{AGENT_UID}:{AGENT_UID}",
            uploads=uploads,
            mounts=[docker.ContainerMountArgs(type="bind", source=path, target=path,
                                              read_only=True)
                    for path in spec.read_only_binds],
            volumes=[docker.ContainerVolumeArgs(volume_name=state.name, container_path=STATE_DIR,
                                                read_only=spec.state_read_only)],
            read_only=True,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges:true"],
            privileged=False,
            ports=[docker.ContainerPortArgs(internal=CONTAINER_METRICS_PORT,
                                            external=spec.host_port, ip=spec.host_address)],
            memory=spec.memory_mb,
            restart="unless-stopped",
            healthcheck=docker.ContainerHealthcheckArgs(tests=spec.healthcheck, interval="60s",
                                                        timeout="10s", retries=3,
                                                        start_period="30s"),
            log_driver="json-file",
            log_opts=dict(LOG_OPTIONS),
            must_run=True,
            opts=opts,
        )
