"""Memory caps for the child processes that evaluate untrusted code (expressions, policies).
Imports nothing of Django: those children start bare."""

from __future__ import annotations

import resource


def address_space_in_use() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def cap_address_space(extra_bytes: int) -> None:
    """Allow ``extra_bytes`` of address space on top of what is mapped now (an interpreter
    with a native library loaded already maps hundreds of MiB it never touches)."""
    cap = address_space_in_use() + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
