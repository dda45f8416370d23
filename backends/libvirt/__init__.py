"""The libvirt backend: KVM/QEMU domains, storage pool volumes and isolated networks.

Registered as the `libvirt` entry point of `occi.backends` (extra `[libvirt]`).
"""

from backends.libvirt.backend import LibvirtBackend, mac_for, platform_name

__all__ = ["LibvirtBackend", "mac_for", "platform_name"]
