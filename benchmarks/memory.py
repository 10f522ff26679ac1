"""Peak resident memory of this process tree (children such as the Spark JVM included)."""

from __future__ import annotations

import os
import threading


def _rss_kib(pid: int | str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first found, then theirs), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, pending = [], list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return found


def _rss_mib() -> float:
    """Resident memory of this process and its children (the Spark JVM is one), in MiB."""
    pid = os.getpid()
    return sum(_rss_kib(member) for member in (pid, *descendants(pid))) / 1024


class PeakRss:
    """Samples the resident memory of this process tree every 20 ms; the peak per stage."""

    def __init__(self) -> None:
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mib())

    def reset(self) -> None:
        self.peak = _rss_mib()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
