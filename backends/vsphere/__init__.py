"""The vSphere backend: vCenter clusters and standalone ESXi hosts through pyvmomi.

Registered as the `vsphere` entry point of `occi.backends` (extra `[vsphere]`).
"""

from backends.vsphere.backend import VsphereBackend

__all__ = ["VsphereBackend"]
