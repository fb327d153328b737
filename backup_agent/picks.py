"""Which restore point a drill restores when a file set says `drillPick: random-within`.

A pick is a seed and the end of the window, written as its id `<YYYYMMDDTHHMMSSZ>-<seed hex>`
(the drill logs it and records it with the outcome). The choice is a pure function of the id,
the file set's name and the points there are, so `backup-agent drill --pick <id>` restores the
same snapshot again as long as it is still kept (the window is checked against the keep rules
when the settings are read).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

_ID = re.compile(r"(\d{8}T\d{6}Z)-([0-9a-f]{8})")
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
ID_ALLOWED = "a pick id as a drill logged it: YYYYMMDDTHHMMSSZ-<8 hex digits>"


@dataclass(frozen=True)
class Point:
    """A restore point that can be picked: its id and when it was taken (Unix time)."""

    id: str
    time: float


@dataclass(frozen=True)
class Pick:
    window_end: dt.datetime
    seed: int

    @property
    def id(self) -> str:
        return f"{self.window_end.strftime(_TIME_FORMAT)}-{self.seed:08x}"

    @classmethod
    def new(cls, now: dt.datetime) -> Pick:
        return cls(now.astimezone(dt.UTC).replace(microsecond=0), secrets.randbits(32))

    @classmethod
    def parse(cls, text: str) -> Pick:
        found = _ID.fullmatch(text)
        if found is None:
            raise ValueError(f"got {text!r}; allowed: {ID_ALLOWED}")
        end = dt.datetime.strptime(found.group(1), _TIME_FORMAT).replace(tzinfo=dt.UTC)
        return cls(end, int(found.group(2), 16))

    def window(self, days: int) -> tuple[float, float]:
        end = self.window_end.timestamp()
        return end - days * 86400, end

    def choose(self, name: str, points: Sequence[Point], days: int) -> Point | None:
        """One of the points inside the window, by the seed; None if the window holds none."""
        start, end = self.window(days)
        inside = sorted((p for p in points if start <= p.time <= end),
                        key=lambda p: (p.time, p.id))
        if not inside:
            return None
        return random.Random(f"{self.seed}:{name}").choice(inside)
