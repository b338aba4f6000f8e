"""One dispatcher places calls at a time: the lease is redis-py's Lock, renewed by its holder,
never taken over while it is held, and taken over once it lapses."""

from __future__ import annotations

import time

from callback.dispatch import LOCK_KEY, Dispatcher


def test_one_dispatcher_leads_and_another_takes_over_when_the_lease_lapses(deps):
    first = Dispatcher(deps, interval=0.1)  # a lease of max(2 s, 20 intervals)
    second = Dispatcher(deps, interval=0.1)
    assert first._leader()
    assert not second._leader()
    assert first._leader()  # renewed by its holder
    assert 0 < deps.redis.pttl(LOCK_KEY) <= 2000
    deps.redis.pexpire(LOCK_KEY, 1)  # the first process stalls past its lease
    time.sleep(0.01)
    assert second._leader()
    assert not first._leader()  # it lost the lease and does not steal it back
