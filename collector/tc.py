"""Attaching the tc programs to interfaces, detaching them, and removing leftovers.

The programs are attached with the `tc` tool (argument lists, no shell) as direct-action bpf
filters on the interface's clsact qdisc, at a fixed preference and handle. A program is handed
to tc by pinning it briefly in bpffs; the filter keeps it alive after the pin is removed.
flowscope's filters are recognised by their program names (fs_from_ep, fs_to_ep), so filters
left by a collector that was killed are found and removed on the next start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

from flowscope.collector.command import CommandError, run
from flowscope.common.errors import NotSupportedError

PROGRAM_NAMES: Final = {"ingress": "fs_from_ep", "egress": "fs_to_ep"}
PREF: Final = "4244"
HANDLE: Final = "0x1"
BPFFS: Final = Path("/sys/fs/bpf")


def ensure_bpffs() -> None:
    """Mount bpffs at /sys/fs/bpf when nothing is mounted there (as Cilium does)."""
    with open("/proc/mounts") as mounts:
        if any(line.split()[1:3] == [str(BPFFS), "bpf"] for line in mounts):
            return
    try:
        run(["mount", "-t", "bpf", "bpf", str(BPFFS)])
    except CommandError as exc:
        raise NotSupportedError(f"bpffs is not mounted at {BPFFS} and mounting it failed: "
                                f"{exc.stderr}") from exc


def attach(ifname: str, direction: str, prog_fd: int, pin_dir: Path) -> None:
    """Attach the program `prog_fd` to `ifname` ("ingress" or "egress")."""
    try:
        run(["tc", "qdisc", "add", "dev", ifname, "clsact"])
    except CommandError as exc:
        if "File exists" not in exc.stderr and "Exclusivity flag on" not in exc.stderr:
            raise
    from bcc import libbcc  # system package, loaded on use

    pin_dir.mkdir(parents=True, exist_ok=True)
    pin = pin_dir / f"{ifname}-{direction}"
    if libbcc.lib.bpf_obj_pin(prog_fd, str(pin).encode()) != 0:
        raise NotSupportedError(f"cannot pin a program in {pin_dir} (is it on bpffs?)")
    try:
        run(["tc", "filter", "replace", "dev", ifname, direction, "pref", PREF, "handle",
             HANDLE, "bpf", "direct-action", "object-pinned", str(pin)])
    finally:
        pin.unlink()


def detach(ifname: str) -> None:
    """Remove flowscope's filters from `ifname`; an interface that is gone is no error."""
    for direction in PROGRAM_NAMES:
        try:
            run(["tc", "filter", "del", "dev", ifname, direction, "pref", PREF,
                 "handle", HANDLE, "bpf"])
        except CommandError as exc:
            if not _is_gone(exc):
                raise


def attached(ifname: str) -> dict[str, str]:
    """direction -> name of the program attached by flowscope on `ifname`."""
    found = {}
    for direction, name in PROGRAM_NAMES.items():
        try:
            filters = json.loads(run(["tc", "-j", "filter", "show", "dev", ifname, direction])
                                 or "[]")
        except CommandError as exc:
            if _is_gone(exc):
                continue
            raise
        for entry in filters:
            prog = entry.get("options", {}).get("prog", {})
            if prog.get("name") == name:
                found[direction] = name
    return found


def remove_leftovers(pin_dir: Path) -> list[str]:
    """Detach flowscope's filters from every interface of this network namespace and remove
    stale pins; return the interfaces that had some."""
    qdiscs = json.loads(run(["tc", "-j", "qdisc", "show"]) or "[]")
    cleaned = []
    for ifname in sorted({q["dev"] for q in qdiscs if q.get("kind") == "clsact"}):
        if attached(ifname):
            detach(ifname)
            cleaned.append(ifname)
    if pin_dir.is_dir():
        for stale in pin_dir.iterdir():
            stale.unlink()
        os.rmdir(pin_dir)
    return cleaned


def _is_gone(exc: CommandError) -> bool:
    text = exc.stderr
    return any(s in text for s in ("Cannot find device", "No such file", "Invalid handle",
                                   "Cannot find specified filter", "No such device"))
