"""Progress on stderr as a numbered step list, so stdout stays for results.

    [2/6] verify dynamo export at 5 size sets ... ok (1.2 s)
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Steps:
    def __init__(self, total: int, *, stream=None, enabled: bool = True):
        self.total = total
        self.n = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.timings: list[tuple[str, float]] = []  # (step, seconds) of every finished step, shown or not

    def note(self, text: str) -> None:
        if self.enabled:
            print(f"      {text}", file=self.stream, flush=True)

    @contextmanager
    def step(self, text: str):
        self.n += 1
        self.total = max(self.total, self.n)
        start = time.perf_counter()
        if self.enabled:
            print(f"[{self.n}/{self.total}] {text} ...", file=self.stream, flush=True)
        status = {"result": "ok"}
        try:
            yield status
        except BaseException:
            if self.enabled:
                print(f"      failed after {time.perf_counter() - start:.1f} s", file=self.stream, flush=True)
            raise
        self.timings.append((text, time.perf_counter() - start))
        if self.enabled:
            print(f"      {status['result']} ({self.timings[-1][1]:.1f} s)", file=self.stream, flush=True)


def silent() -> Steps:
    return Steps(0, enabled=False)
