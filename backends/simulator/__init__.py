"""The simulator backend: the embedded default platform, a pretend hypervisor kept in SQL.

Registered as the `simulator` entry point of `occi.backends`.
"""

from backends.simulator.backend import SimulatorBackend, platform_name

__all__ = ["SimulatorBackend", "platform_name"]
