"""The per-process memory of verified credentials, and the digests that name them.

A credential is remembered under `credential_key(...)`, a keyed BLAKE2b MAC of the method and the
whole secret under a key drawn at random when the process starts: the plaintext is never kept,
and a digest means nothing outside this process. An entry lives `auth_cache_seconds` (a revoked
token, a changed password or a changed role takes that long to bite in a process that has seen
the credential) and the cache holds a bounded number of entries, the least recently used going
first. Only successes are kept. Pure memory: no SQL, no HTTP.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

#: drawn once per process: digests made in one process are no use in another
_PROCESS_KEY = os.urandom(32)

V = TypeVar("V")


def credential_key(method: str, *parts: str) -> str:
    """The cache key of one credential: a MAC (keyed BLAKE2b, as strong as HMAC-SHA256 and a
    few times faster on the hot path) of the method name and the secret's parts (user name
    and password, a token) under the process's key, never reversible to them."""
    data = bytearray(method.encode())
    for part in parts:
        encoded = part.encode("utf-8", "surrogatepass")
        data += len(encoded).to_bytes(4, "big")  # ("ab", "c") and ("a", "bc") differ
        data += encoded
    return hashlib.blake2b(bytes(data), key=_PROCESS_KEY, digest_size=32).hexdigest()


class TtlCache(Generic[V]):
    """A thread-safe LRU map whose entries expire `ttl` seconds after they were put (ttl 0:
    nothing is kept). `clock` is time.monotonic unless a test gives another."""

    def __init__(self, ttl: float, maxsize: int = 10_000, clock=time.monotonic):
        self.ttl = ttl
        self.maxsize = maxsize
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            expires, value = found
            if expires <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: str, value: V) -> None:
        if self.ttl <= 0 or self.maxsize <= 0:
            return
        with self._lock:
            self._items[key] = (self._clock() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
