"""`python -m review.costs --stack prod [--postgres-gb-per-day 50 ...]`: the monthly cost of a
stack's buckets for your own volumes, and of its ECS jobs on Fargate (compliance.costs),
printed as Markdown."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from compliance.costs import Volumes, as_markdown, cost_model
from review.inventory import from_recorded
from review.stack_config import ROOT, run_stack


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m review.costs",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--postgres-gb-per-day", type=float, default=Volumes.postgres_gb_per_day)
    parser.add_argument("--files-gb-per-day", type=float, default=Volumes.files_gb_per_day)
    parser.add_argument("--object-mb", type=float, default=Volumes.object_mb)
    parser.add_argument("--restic-retention-days", type=int,
                        default=Volumes.restic_retention_days)
    args = parser.parse_args(argv)
    run, settings = run_stack(ROOT, args.stack)
    volumes = Volumes(args.postgres_gb_per_day, args.files_gb_per_day, args.object_mb,
                      args.restic_retention_days)
    model = cost_model(from_recorded(run.resources), volumes, runtime=settings.runtime)
    print("\n".join(as_markdown(model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
