"""The repository cites public sources only: private research notes are not part of it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The two forms such a citation takes: a note's name followed by a section sign ("<note> §3"),
# or a Markdown file under the workspace's shared/ folder (outside this repository).
PRIVATE_CITATION = re.compile(r"[\w-]+ §\d|\bshared/[\w-]+/[\w.-]+\.md")


def test_no_tracked_file_cites_the_private_research_notes():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert len(tracked) > 100  # the listing really is the repository
    citing = [path for path in tracked
              if PRIVATE_CITATION.search((ROOT / path).read_text(errors="replace"))]
    assert citing == []
