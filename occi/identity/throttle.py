"""Throttling of failed authentications, per server process: how many failed from one client
address, or for one claimed user name, within a sliding window; past the limit a request with
credentials is refused (429) before anything is verified, so guessing costs the server nothing.

Also the client address a request comes from (the peer, or what a trusted proxy says), and the
rate limit on the warning each failure logs. Pure memory: no SQL, no HTTP.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict, deque

log = logging.getLogger("occi.auth")

#: addresses and user names remembered at most (the least recently failing are forgotten first)
MAX_KEYS = 100_000
#: failure warnings logged per window at most; the rest are counted and reported once
LOG_LINES = 20


class Throttle:
    """Failures per key ("addr:<ip>", "user:<name>") in the last `window` seconds."""

    def __init__(self, limit: int, window: float, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._logged: deque[float] = deque()
        self._suppressed = 0

    @staticmethod
    def keys(address: str, user: str | None) -> list[str]:
        return [f"addr:{address}"] + ([f"user:{user}"] if user else [])

    def retry_after(self, address: str, user: str | None) -> int | None:
        """Seconds until the address and the user may try again, or None when they may now."""
        if self.limit <= 0 or not self._fails:  # nothing failed lately: no lock on the hot path
            return None
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in self.keys(address, user):
                times = self._recent(key, now)
                if times is not None and len(times) >= self.limit:
                    wait = max(wait, times[len(times) - self.limit] + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, address: str, user: str | None) -> None:
        now = self._clock()
        with self._lock:
            for key in self.keys(address, user):
                times = self._recent(key, now)
                if times is None:
                    times = self._fails[key] = deque()
                times.append(now)
                self._fails.move_to_end(key)
                while len(times) > max(self.limit, 1):
                    times.popleft()
            while len(self._fails) > MAX_KEYS:
                self._fails.popitem(last=False)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._fails.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._fails[key]
            return None
        return times

    def warn(self, message: str, *args: object) -> None:
        """Log one failure at WARNING, at most LOG_LINES per window: a flood of guesses from
        many addresses does not flood the log (how many were left out is said once)."""
        now = self._clock()
        with self._lock:
            while self._logged and self._logged[0] <= now - max(self.window, 1.0):
                self._logged.popleft()
            if len(self._logged) >= LOG_LINES:
                self._suppressed += 1
                return
            self._logged.append(now)
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            log.warning("%d more failed authentications were not logged", suppressed)
        log.warning(message, *args)


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma- or space-separated addresses and CIDR networks (the x509_proxies setting)."""
    out = []
    for item in text.replace(",", " ").split():
        out.append(ipaddress.ip_network(item, strict=False))
    return out


def client_address(remote_addr: str, forwarded_for: str | None, proxies) -> str:
    """The client's address: the peer's (REMOTE_ADDR), unless the peer is a trusted proxy
    (x509_proxies) that sent X-Forwarded-For, whose last entry (the one that proxy added) is
    then the client's."""
    if not forwarded_for or not proxies:
        return remote_addr
    try:
        peer = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return remote_addr
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    if not any(peer in net for net in proxies):
        return remote_addr
    last = forwarded_for.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return remote_addr
