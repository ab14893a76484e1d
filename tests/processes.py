"""Processes seen through /proc, for the tests that kill a batch or one of its workers."""

from __future__ import annotations

from pathlib import Path


def _table() -> dict[int, tuple[int, str, bytes]]:
    """pid -> (parent pid, state, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2:].split()
            table[int(entry.name)] = (int(fields[1]), fields[0].decode(), cmdline)
    return table


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    return [p for p, (parent, _state, _cmd) in _table().items() if parent == pid]


def descendants(root: int, match: str = "") -> list[int]:
    """Processes under ``root`` (at any depth) whose command line contains ``match``."""
    table = _table()

    def under(pid: int) -> bool:
        while pid > 1 and pid in table:
            pid = table[pid][0]
            if pid == root:
                return True
        return False

    return [p for p, (_parent, _state, cmd) in table.items() if match.encode() in cmd and under(p)]


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting to be reaped."""
    entry = _table().get(pid)
    return entry is not None and entry[1] != "Z"
