"""The exporter's `/`: a read-only status page, and the WSGI app that serves it beside `/metrics`.

The page is rendered on request from the refresh loop's last state, the one `/metrics` renders
too (`status.rows` never reads S3). It is meant to be safe to expose read-only: it shows bucket
names and prefixes, timestamps and verdicts, never an object key, a drill's error detail or a
setting; every name is HTML-escaped, and the response forbids scripts (CSP `default-src 'none'`).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from backup_agent import status
from backup_agent.exporter import BucketReader
from backup_agent.status import Freshness, TargetRow
from contract.agent_settings import AgentSettings

HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]
STYLE = """
body { font-family: sans-serif; margin: 1.5rem; color: #212121; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .4rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }
td.age { white-space: nowrap; }
tr.overdue { background: #ffebee; }
.track { display: inline-block; width: 10rem; height: .8rem; background: #e0e0e0;
         vertical-align: middle; margin-right: .5rem; }
.bar { display: block; height: 100%; }
.bar.ok { background: #2e7d32; }
.bar.overdue { background: #c62828; }
span.overdue, span.failed, li.unreadable { color: #c62828; font-weight: bold; }
span.ok, span.passed, li.ok { color: #2e7d32; }
"""

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _age_cell(value: Freshness) -> str:
    verdict = "overdue" if value.overdue else "ok"
    filled = 100.0 if value.age_seconds is None else min(
        100.0, 100.0 * max(value.age_seconds, 0.0) / value.max_age_seconds)
    age = "none" if value.age_seconds is None else status.duration(value.age_seconds)
    return (f'<span class="track"><span class="bar {verdict}" style="width: {filled:.0f}%">'
            f'</span></span><span class="{verdict}">{_e(age)} of '
            f"{_e(status.duration(value.max_age_seconds))}</span>")


def _wal_cell(value: Freshness | None) -> str:
    if value is None:
        return "-"
    verdict = "overdue" if value.overdue else "ok"
    if value.newest is None:
        return f'<span class="{verdict}">no segment archived</span>'
    return (f'<span class="{verdict}">newest segment {_e(status.duration(value.age_seconds))} '
            f"ago (RPO {_e(status.duration(value.max_age_seconds))})</span>")


def _drill_cell(row: TargetRow, now: float) -> str:
    if row.drill.finished is None:
        return f'<span class="{_e(row.drill.result)}">{_e(row.drill.result)}</span>'
    return (f'<span class="{_e(row.drill.result)}">{_e(row.drill.result)}</span> '
            f'<time>{_e(status.when(row.drill.finished))}</time> '
            f"({_e(status.duration(now - row.drill.finished))} ago)")


def _row(row: TargetRow, now: float) -> str:
    verdict = "overdue" if row.overdue else "ok"
    return (f'<tr class="target {verdict}" data-target="{_e(row.target)}" '
            f'data-kind="{_e(row.kind)}" data-name="{_e(row.name)}">'
            f"<td>{_e(row.target)}</td><td>{_e(row.kind)}</td><td>{_e(row.name)}</td>"
            f"<td>{_e(row.bucket)}/{_e(row.prefix)}</td>"
            f"<td><time>{_e(status.when(row.backup.newest))}</time></td>"
            f'<td class="age">{_age_cell(row.backup)}</td><td>{_wal_cell(row.wal)}</td>'
            f"<td>{_drill_cell(row, now)}</td></tr>")


def _bucket_line(row: TargetRow, now: float) -> str:
    read = ("never read" if row.refreshed is None
            else f"last read {_e(status.duration(now - row.refreshed))} ago")
    if row.bucket_readable:
        return f'<li class="ok">{_e(row.target)} ({_e(row.bucket)}): {read}</li>'
    return (f'<li class="unreadable">{_e(row.target)} ({_e(row.bucket)}): cannot be read, '
            f"{read}; the rows show the last known state</li>")


def render_page(rows: Sequence[TargetRow], now: float) -> str:
    buckets = {row.target: row for row in rows}
    return "\n".join([
        '<!doctype html>', '<html lang="en"><head><meta charset="utf-8">',
        "<title>Backup status</title>", f"<style>{STYLE}</style></head><body>",
        "<h1>Backup status</h1>",
        f"<p>Rendered <time>{_e(status.when(now))}</time> from the exporter's last refresh. "
        '<a href="/metrics">Prometheus metrics</a></p>',
        "<ul>", *(_bucket_line(row, now) for row in buckets.values()), "</ul>",
        "<table><thead><tr><th>target</th><th>kind</th><th>name</th><th>prefix</th>"
        "<th>newest backup</th><th>age against its limit</th><th>WAL archiving</th>"
        "<th>last drill</th></tr></thead><tbody>",
        *(_row(row, now) for row in rows),
        "</tbody></table></body></html>", "",
    ])


def exporter_app(settings: AgentSettings, readers: Sequence[BucketReader],
                 registry: CollectorRegistry) -> WsgiApp:
    """`/` the status page, `/metrics` the exposition; nothing else."""
    metrics = make_wsgi_app(registry)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics(environ, start_response)
        if path != "/":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: / (status) and /metrics\n"]
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        now = time.time()
        page = render_page([row for reader in readers
                            for row in status.rows(settings, reader, now)], now).encode()
        start_response("200 OK", [*HEADERS, ("Content-Length", str(len(page)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [page]

    return app
