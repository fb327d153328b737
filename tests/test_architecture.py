"""The layers of docs/architecture.md, checked on the source: which of our packages each package
may import, which third-party packages stay out of it, and no import cycle between modules.

Every import counts — at module level, inside functions and under `if TYPE_CHECKING:` — since
a cycle hidden in a function is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support import (
    FILE_SECONDS,
    ROOT,
    file_seconds,
    longest_files_first,
    test_folder,
    time_summary,
)

OURS = ("contract", "backup_agent", "components", "compliance", "review", "policy", "infra",
        "delivery", "benchmarks")
# Which of our packages each one may import (besides itself); benchmarks may import any.
ALLOWED = {
    "contract": set(),
    "backup_agent": {"contract"},
    "components": {"contract"},
    "compliance": {"contract", "components"},
    "policy": {"compliance", "contract"},
    "review": {"components", "compliance", "contract"},
    "infra": {"components", "contract"},
    "delivery": {"review", "components", "contract"},
    "benchmarks": set(OURS),
}
PULUMI = {"pulumi", "pulumi_aws", "pulumi_docker", "pulumi_policy"}
# Third-party packages each package must not import.
FORBIDDEN = {
    "contract": PULUMI | {"boto3", "botocore", "yaml"},
    "backup_agent": PULUMI | {"yaml"},
    "compliance": {"pulumi_aws", "pulumi_docker", "pulumi_policy", "boto3"},
    "components": {"pulumi_policy", "boto3", "parliament"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(path): path for package in OURS for path in (ROOT / package).rglob("*.py")}


def imported(path: Path, name: str, known: Iterable[str]) -> set[str]:
    """Every module `path` imports: `from a import b` is a.b when that is a module, else a."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imported(path, name, modules) for name, path in modules.items()}


def top(module: str) -> str:
    return module.split(".")[0]


def violations(graph: Mapping[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        package = top(module)
        for target in sorted(targets):
            other = top(target)
            if other in OURS and other != package and other not in ALLOWED[package]:
                found.append(f"{module} imports {target}: {package} may import only "
                             + (", ".join(sorted(ALLOWED[package])) or "nothing of ours"))
            if other in FORBIDDEN.get(package, ()):
                found.append(f"{module} imports {target}, which {package} must not import")
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected sets of our modules with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == module:
                    break
            if len(members) > 1 or module in graph.get(module, ()):
                found.append(sorted(members))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_every_import_follows_the_layers():
    assert violations(import_graph()) == []


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def test_the_graph_sees_lazy_imports_and_resolves_modules():
    graph = import_graph()
    assert "contract.layout" in graph["components.container_specs"]
    assert "compliance.lint" in graph["compliance.controls.documents"]  # inside a function
    assert "review.recording" in graph["review.stack_config"]


@pytest.mark.parametrize(("graph", "expected"), [
    ({"contract.layout": {"components.layout"}},
     ["contract.layout imports components.layout: contract may import only nothing of ours"]),
    ({"backup_agent.cli": {"pulumi"}},
     ["backup_agent.cli imports pulumi, which backup_agent must not import"]),
    ({"compliance.report": {"review.preview"}},
     ["compliance.report imports review.preview: compliance may import only components, "
      "contract"]),
    ({"components.settings": {"compliance.controls"}},
     ["components.settings imports compliance.controls: components may import only contract"]),
    ({"review.preview": {"compliance.report", "components.settings", "contract.layout"}}, []),
])
def test_a_forbidden_import_is_named(graph, expected):
    assert violations(graph) == expected


def test_a_cycle_is_named_with_its_members():
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}, "b.s": {"b.s"}}
    assert sorted(cycles(graph)) == [["a.x", "a.y", "a.z"], ["b.s"]]
    assert cycles({"a.x": {"a.y"}, "a.y": set()}) == []


def test_the_agent_image_holds_the_agent_and_the_contract():
    """Why backup_agent may import contract only: the image carries nothing else of ours."""
    dockerfile = (ROOT / "docker" / "backup-agent" / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines()
              if line.startswith("COPY ") and line.split()[1] in OURS}
    assert copied == {"backup_agent", "contract"}
    for package in copied:
        assert f"COPY {package} /opt/backup-agent/src/{package}" in dockerfile


@pytest.mark.parametrize(("nodeid", "folder"), [
    ("tests/agent/test_keep.py::test_x[a/b]", "tests/agent"),
    ("tests/compliance/test_report.py::test_y", "tests/compliance"),
    ("tests/test_settings.py::test_z", "tests")])
def test_the_suite_reports_time_by_the_folder_of_each_test(nodeid, folder):
    assert test_folder(nodeid) == folder


def _report(nodeid, when, duration, worker=None):
    node = SimpleNamespace(gateway=SimpleNamespace(id=worker)) if worker else None
    return SimpleNamespace(nodeid=nodeid, when=when, duration=duration, node=node)


def test_the_time_summary_sums_each_folder_and_each_worker():
    keep, report = "tests/agent/test_keep.py::test_x", "tests/test_settings.py::test_z"
    reports = [_report(keep, "setup", 1.0, "gw0"), _report(keep, "call", 2.0, "gw0"),
               _report(keep, "teardown", 0.5, "gw0"), _report(report, "call", 0.25, "gw1"),
               SimpleNamespace(nodeid="tests", when=None, duration=9.0)]  # a collect report
    assert time_summary(reports) == [
        "     3.5 s     1 tests  tests/agent",
        "     0.2 s     1 tests  tests",
        "     3.8 s     2 tests  in all",
        "     3.5 s  on worker gw0",
        "     0.2 s  on worker gw1"]
    # Without xdist, no worker lines; without a test, no summary.
    assert time_summary([_report(report, "call", 0.25)]) == [
        "     0.2 s     1 tests  tests", "     0.2 s     1 tests  in all"]
    assert time_summary([]) == []


def test_file_seconds_sum_each_file():
    keep, drill = "tests/agent/test_keep.py::test_x", "tests/agent/test_keep.py::test_y[a::b]"
    reports = [_report(keep, "setup", 1.0), _report(keep, "call", 2.04),
               _report(drill, "teardown", 0.5), _report("tests/test_z.py::t", "call", 0.25),
               SimpleNamespace(nodeid="tests", when=None, duration=9.0)]
    assert file_seconds(reports) == {"tests/agent/test_keep.py": 3.5, "tests/test_z.py": 0.2}


def test_files_run_longest_first_and_unmeasured_ones_before_all():
    nodeids = ["tests/a.py::t1", "tests/a.py::t2", "tests/b.py::t1", "tests/b.py::t2",
               "tests/new.py::t", "tests/c.py::t"]
    seconds = {"tests/a.py": 1.0, "tests/b.py": 20.0, "tests/c.py": 1.0}
    assert [nodeids[i] for i in longest_files_first(nodeids, seconds)] == [
        "tests/new.py::t", "tests/b.py::t1", "tests/b.py::t2", "tests/a.py::t1",
        "tests/a.py::t2", "tests/c.py::t"]


def test_every_measured_file_exists():
    """A renamed or removed file leaves tests/file_seconds.json (`make test-file-seconds`)."""
    measured = json.loads(FILE_SECONDS.read_text())
    assert [name for name in measured if not (ROOT / name).is_file()] == []
