"""`python -m review.preview [--stack prod]`: the offline preview, no CLI, no credentials.

Writes every generated document as pretty, stable JSON plus summary.md to `preview/<stack>/`,
the stack outputs (outputs.json), the compliance review (compliance.md + compliance.json, see
compliance/report.py) and, for a stack with a runtime, the Prometheus scrape configuration
(monitoring/scrape-configs.yml).
Exit status: 0 done, 2 an unusable stack file or invalid configuration (one line `error:
<key>: <what is wrong>; allowed: ...`; nothing is declared, nothing written), 3 a mandatory
compliance control fails without a waiver (the documents are still written).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
from pathlib import Path

from contract.reader import InvalidSetting
from review.stack_config import ROOT

SCRAPE_CONFIG = "monitoring/scrape-configs.yml"
# A preview allocates tens of thousands of objects that die young: an Output and its asyncio
# tasks for every property of every resource (a docker Container has about a hundred). At
# CPython's default first threshold (700) that is hundreds of collections and, from about 100
# resources on, a third full one over every imported class (70 ms of a 1.2 s preview). At 20000
# the collector's work stays flat as a stack grows; peak memory moves by under 1 MiB.
COLLECTION_THRESHOLD = 20_000


def collect_less() -> None:
    """The preview's garbage-collection threshold, for this process (the preview is one)."""
    gc.set_threshold(COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backup-preview", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod", help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--project-dir", type=Path, default=ROOT,
                        help="directory holding Pulumi.yaml (default: this checkout)")
    parser.add_argument("--out", type=Path, help="output directory (default: preview/<stack>)")
    args = parser.parse_args(argv)
    collect_less()
    from compliance.report import build_report, write_report
    from components.container_specs import container_specs
    from components.scrape_config import scrape_config, to_yaml
    from review.inventory import from_recorded
    from review.render import OUTPUTS_DOCUMENT, render_documents, summary, to_text
    from review.stack_config import run_stack

    out = args.out or args.project_dir / "preview" / args.stack
    try:
        run, settings = run_stack(args.project_dir, args.stack)
        report = build_report(args.stack, from_recorded(run.resources), settings.waivers,
                              runtime=settings.runtime)
    except InvalidSetting as error:  # a StackFileError or a ConfigError
        print(f"error: {error}", file=sys.stderr)
        return 2
    if out.exists():
        shutil.rmtree(out)
    documents = {path: to_text(document) for path, document in render_documents(run).items()}
    documents[OUTPUTS_DOCUMENT] = to_text(run.outputs)
    if settings.runtime is not None:
        documents[SCRAPE_CONFIG] = to_yaml(scrape_config(settings.runtime,
                                                         container_specs(settings)))
    for relative, text in documents.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (out / "summary.md").write_text(summary(run, args.stack))
    write_report(report, out)
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{len(run.resources)} resources, {len(documents)} documents written to {out}")
    if not report.passed:
        print(f"error: mandatory compliance controls fail: {', '.join(report.mandatory_failures())}"
              f" (see {out / 'compliance.md'}; a stack may waive a control with a reason in "
              "its config, key waivers)", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
