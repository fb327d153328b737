"""The package's declared dependencies match what the image and the tests install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0].lower())
    return names


def test_agent_extra_names_exactly_the_pinned_agent_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = requirement_names(project["optional-dependencies"]["agent"])
    pinned = requirement_names((ROOT / "requirements-agent.txt").read_text().splitlines())
    assert extra == pinned == {"boto3", "prometheus-client", "croniter", "psycopg"}


def test_prices_ship_with_the_compliance_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-data"] == {"compliance": ["prices.json"]}
    assert (ROOT / "compliance" / "prices.json").is_file()
