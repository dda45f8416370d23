"""The XenServer / XCP-ng backend: a Xen pool through XenAPI.

Registered as the `xenserver` entry point of `occi.backends` (extra `[xenserver]`).
"""

from backends.xenserver.backend import XenServerBackend

__all__ = ["XenServerBackend"]
