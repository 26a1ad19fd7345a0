"""Peak resident memory of this process and its children while a block runs (the peer stage trains in
a child), sampled in a background thread.

Sampled, not read from getrusage: ru_maxrss is the peak of the whole process so far, so a stage
after a larger one would show nothing of its own.
"""

import threading

import psutil

MIB = 2**20


class PeakRss:
    """`with PeakRss() as memory:` ...; then memory.start_mib and memory.peak_mib (RSS, MiB, children's
    included)."""

    def __init__(self, interval_s: float = 0.01):
        self._interval_s = interval_s
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._start = self._peak = 0

    def __enter__(self) -> "PeakRss":
        self._start = self._peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> bool:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        return False

    @property
    def start_mib(self) -> float:
        return self._start / MIB

    @property
    def peak_mib(self) -> float:
        return self._peak / MIB

    def _rss(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # it ended between the listing and the reading
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._peak = max(self._peak, self._rss())
