"""Whether a process still lives: for orphaned budget reservations and for what `stratlab up` started."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int | None) -> bool:
    """True while `pid` runs on this host (a zombie, exited but not yet reaped, counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


def process_identity(pid: int | None) -> str | None:
    """What tells this process apart from a later one that reuses its pid: the boot it runs in and its
    start time in clock ticks since boot (field 22 of /proc/<pid>/stat). None when it is not running."""
    if not alive(pid):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after its closing one
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{boot}:{fields[19]}"


def same_process(pid: int | None, identity: str | None) -> bool:
    """True while the process recorded as (pid, identity) still runs: not merely a process that reuses
    the pid. A record without an identity is never matched, so nothing is signalled on a guess."""
    return identity is not None and process_identity(pid) == identity
