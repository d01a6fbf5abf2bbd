"""Which replica serves a request: session affinity, load, health.

An agent session is a chain of appends (each step's prompt is the last one plus a little), so
its prompts are served from the prefix cache only on the replica that saw the previous step.
Every request carries a routing key (the session id). With the ``affinity`` policy a new key is
placed by rendezvous (highest-random-weight) hashing over the healthy replicas, with bounded
loads: on its highest-weight replica unless that one already holds its even share of the known
sessions, then on the next (a new session has no cache anywhere, so this costs nothing, and 8
sessions on 2 replicas split 4/4 instead of like coin flips). Each session then has one home, and
when a replica leaves only its own sessions move. A session leaves its
home only while that replica is clearly overloaded compared with the least loaded one (both
thresholds, as in the ``cache_aware`` policy of vLLM's router and Ray Serve's
``PrefixCacheAffinityRouter``: more than ``balance_abs_threshold`` requests in flight above it,
and more than ``balance_rel_threshold`` times as many); it then stays where it went (its cache is
there now). The defaults (16, 1.5) are vllm-router's rule with a smaller absolute margin, since
we count only this process's requests.
Requests without a key, and every request under ``least_in_flight``, go to the replica with the
fewest requests in flight.

A replica that fails (connection refused, a dropped stream, 5xx, a read timeout) is taken out
for a backoff that doubles on each failure (``down_s`` up to ``max_down_s``); the engine probes
it when that time is up and puts it back when it answers. While every replica is out, a request
goes to the one whose time-out ends first, so a single replica still gets its retries.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError

log = logging.getLogger(__name__)

Policy = Literal["affinity", "least_in_flight"]
POLICIES: tuple[Policy, ...] = ("affinity", "least_in_flight")


@dataclass(slots=True)
class Replica:
    url: str
    in_flight: int = 0
    served_model: str = ""
    sent: int = 0  # requests sent, retries included (for balance figures)
    failures: int = 0  # in a row; 0 when healthy
    down_until: float | None = None  # None: healthy (in the rotation)
    probing: bool = False

    @property
    def healthy(self) -> bool:
        return self.down_until is None


def rendezvous_score(key: str, url: str) -> int:
    """The weight of ``url`` for ``key``: stable across processes and runs (not ``hash()``)."""
    digest = hashlib.blake2b(f"{key}\0{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Router:
    """Chooses replicas; told about failures and successes by the engine."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        policy: Policy = "affinity",
        balance_abs_threshold: int = 16,
        balance_rel_threshold: float = 1.5,
        down_s: float = 1.0,
        max_down_s: float = 30.0,
        max_keys: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in POLICIES:
            raise ConfigError(
                f"routing policy must be one of {', '.join(POLICIES)}, not {policy!r}"
            )
        if balance_abs_threshold < 0 or balance_rel_threshold < 1:
            raise ConfigError(
                "balance thresholds: the absolute one must be >= 0 and the relative one >= 1"
            )
        self.replicas = [Replica(u) for u in urls]
        self.policy: Policy = policy
        self.balance_abs = balance_abs_threshold
        self.balance_rel = balance_rel_threshold
        self.down_s = down_s
        self.max_down_s = max_down_s
        self._clock = clock
        self._homes: OrderedDict[str, str] = OrderedDict()  # key → url it last went to
        self._sessions: dict[str, int] = {}  # url → how many keys have it as home
        self._max_keys = max_keys
        self._rr = 0

    # -- choosing ----------------------------------------------------------------------------
    def pick(self, key: str | None) -> Replica:
        healthy = [r for r in self.replicas if r.healthy]
        if not healthy:
            # Everyone is out: the replica back soonest takes the request (it is the probe).
            return min(self.replicas, key=lambda r: r.down_until or 0.0)
        least = self._least(healthy)
        if key is None or self.policy == "least_in_flight":
            return least
        by_url = {r.url: r for r in healthy}
        home = by_url.get(self._homes.get(key, ""))
        if home is None:
            home = self._place(key, healthy)
        if self.overloaded(home, least):
            log.info("routing: %s overloaded, session %s goes to %s", home.url, key, least.url)
            home = least
        self._set_home(key, home.url)
        return home

    def _place(self, key: str, healthy: list[Replica]) -> Replica:
        """A new session's home: by weight, skipping replicas that hold their share already."""
        known = sum(self._sessions.get(r.url, 0) for r in healthy)
        share = -(-(known + 1) // len(healthy))  # ceil: the even share with this session
        ranked = sorted(healthy, key=lambda r: rendezvous_score(key, r.url), reverse=True)
        return next((r for r in ranked if self._sessions.get(r.url, 0) < share), ranked[0])

    def _set_home(self, key: str, url: str) -> None:
        old = self._homes.get(key)
        if old != url:
            if old is not None:
                self._sessions[old] -= 1
            self._sessions[url] = self._sessions.get(url, 0) + 1
        self._homes[key] = url
        self._homes.move_to_end(key)
        if len(self._homes) > self._max_keys:
            _, gone = self._homes.popitem(last=False)
            self._sessions[gone] -= 1

    def overloaded(self, replica: Replica, least: Replica) -> bool:
        """Clearly busier than the least loaded: past both thresholds."""
        return (
            replica.in_flight - least.in_flight > self.balance_abs
            and replica.in_flight > self.balance_rel * least.in_flight
        )

    def _least(self, replicas: list[Replica]) -> Replica:
        low = min(r.in_flight for r in replicas)
        ties = [r for r in replicas if r.in_flight == low]
        self._rr += 1
        return ties[self._rr % len(ties)]

    # -- health ------------------------------------------------------------------------------
    def failed(self, replica: Replica, why: str) -> None:
        """Take ``replica`` out for a backoff that doubles with each failure in a row."""
        replica.failures += 1
        delay = min(self.max_down_s, self.down_s * 2 ** (replica.failures - 1))
        delay *= random.uniform(0.8, 1.2)
        if replica.healthy:
            log.warning(
                "routing: %s taken out (%s); probing again in %.1fs", replica.url, why, delay
            )
        replica.down_until = self._clock() + delay

    def succeeded(self, replica: Replica) -> None:
        if not replica.healthy:
            log.warning("routing: %s is back", replica.url)
        replica.failures = 0
        replica.down_until = None

    def due(self) -> list[Replica]:
        """Replicas whose time out is over and that nobody is probing yet."""
        now = self._clock()
        return [
            r
            for r in self.replicas
            if r.down_until is not None and r.down_until <= now and not r.probing
        ]

    def all_down(self) -> bool:
        return not any(r.healthy for r in self.replicas)

    def others_healthy(self, replica: Replica) -> bool:
        return any(r.healthy for r in self.replicas if r is not replica)
