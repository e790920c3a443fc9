"""Leader election for controllers that share one state store.

Several ``deployops serve`` processes may run against one PostgreSQL store (for availability);
exactly one acts. Each tick the controller calls :meth:`LeaderLease.hold`: the holder renews the
lease, a standby takes it over only once it has expired, so a killed leader is replaced within
``ttl_s`` plus one tick, and a job or an alarm is never handled by two controllers at once.
:meth:`keep` renews from a thread of its own, so a long piece of work (resuming a deployment at
start-up) does not lose the lease. A clean stop releases it and the standby takes over at once.

    lease = LeaderLease(store=store, name="controller/production", holder=worker, clock=clock)
    if lease.hold():
        ...  # act
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from deployops.clock import Clock
from deployops.store import LeaseInfo, StateStore

__all__ = ["DEFAULT_LEASE_TTL_S", "LeaderLease", "controller_lease_name"]

DEFAULT_LEASE_TTL_S = 15.0


def controller_lease_name(environment: str) -> str:
    """The one lease name per environment's controller."""
    return f"controller/{environment}"


@dataclass
class LeaderLease:
    store: StateStore
    name: str
    holder: str
    clock: Clock
    ttl_s: float = DEFAULT_LEASE_TTL_S
    last: LeaseInfo | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def hold(self) -> bool:
        """Take or renew the lease; whether this process is the leader now."""
        with self._lock:
            self.last = self.store.hold_lease(
                self.name, holder=self.holder, now=self.clock.now(), ttl_s=self.ttl_s
            )
            return self.last.holder == self.holder

    @property
    def leader(self) -> str | None:
        """Who held the lease when it was last looked at."""
        return self.last.holder if self.last else None

    def keep(self, stop: threading.Event) -> None:
        """Renew every third of the time to live until ``stop`` is set (run in a thread)."""
        while not stop.wait(self.ttl_s / 3):
            self.hold()

    def release(self) -> None:
        with self._lock:
            self.store.release_lease(self.name, holder=self.holder)
            self.last = None
