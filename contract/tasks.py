"""What the ECS placement's stack side and the agent in a task share: the task group a job's
runs are started in (the overlap guard finds a running twin by it), the outcome metric the
alarms watch, and the exit status of a run skipped because its job was already running."""

from __future__ import annotations

from typing import Final

from contract.jobs import Job

# Every run of a job is started in this ECS task group: by its schedule (EventBridge
# Scheduler's EcsParameters.group) and by hand (`aws ecs run-task --group ...`).
TASK_GROUP_PREFIX: Final = "backup-job:"
# Put after every run, 1 for success and 0 for failure, with the job id as the only dimension.
OUTCOME_METRIC: Final = "JobSucceeded"
JOB_DIMENSION: Final = "Job"
# EX_TEMPFAIL (sysexits.h): another run of the same job is still running; this one did nothing.
SKIPPED_EXIT: Final = 75
# Where a task's scratch space (its ephemeral storage, a bind-mount volume) is mounted.
SCRATCH_DIR: Final = "/scratch"


def task_group(job: Job) -> str:
    return f"{TASK_GROUP_PREFIX}{job.id}"
