"""What the agent runs: a job is a database's base backup, a file set's snapshot, or the
restore drill. Its id (`postgres:<database>`, `files:<file set>`, `drill`) is what the settings
file lists, the scheduler keys its runs by and the metrics label carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["postgres", "files", "drill"]
KINDS: Final = ("postgres", "files", "drill")


@dataclass(frozen=True)
class Job:
    kind: Kind
    name: str | None = None  # the database or file set; None for the drill

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown job kind {self.kind!r}; allowed: {', '.join(KINDS)}")
        if (self.kind == "drill") != (self.name is None):
            needs = "takes no" if self.kind == "drill" else "needs a"
            raise ValueError(f"a {self.kind} job {needs} name")

    @property
    def id(self) -> str:
        return self.kind if self.name is None else f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, job_id: str) -> Job:
        """The job of an id; ValueError for text that is no job id."""
        kind, separator, name = job_id.partition(":")
        if kind == "drill" and not separator:
            return DRILL
        if kind in ("postgres", "files") and name:
            return cls(kind, name)
        raise ValueError(f"{job_id!r} is not a job id; allowed: postgres:<database>, "
                         "files:<file set>, drill")


def database_job(name: str) -> Job:
    return Job("postgres", name)


def files_job(name: str) -> Job:
    return Job("files", name)


DRILL: Final = Job("drill")
