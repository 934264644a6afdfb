"""Progress lines for output that is not a terminal: at most one per interval, and the last."""

from __future__ import annotations

import logging

from pipeline.core.heartbeat import Heartbeat


def test_heartbeat_logs_at_most_once_per_interval_and_always_the_last(caplog):
    now = [0.0]
    beat = Heartbeat("tuning", logging.getLogger("t.hb"), every=10, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="t.hb")
    logged = []
    for done, t in [(1, 3), (2, 9), (3, 11), (4, 12), (5, 13)]:
        now[0] = t
        logged.append(beat.beat(done, 5, "best 0.8"))
    assert logged == [False, False, True, False, True]  # 11 s passed; 5/5 is the last
    assert [r.getMessage() for r in caplog.records] == [
        "tuning: 3/5 best 0.8 (11 s)",
        "tuning: 5/5 best 0.8 (13 s)",
    ]


def test_a_disabled_heartbeat_logs_nothing(caplog):
    beat = Heartbeat("explain", logging.getLogger("t.hb2"), every=0, enabled=False)
    caplog.set_level(logging.INFO, logger="t.hb2")
    assert not beat.beat(1, 1)
    assert caplog.records == []
