"""Progress as a numbered step list, on the `polyonnx` logger and, for the CLI, on stderr
(stdout stays for results).

    [2/6] verify dynamo export at 5 size sets ... ok (1.2 s)

Library callers see it through `logging` (INFO: nothing shows unless they configure logging);
the CLI passes ``stream=sys.stderr`` and keeps its progress lines (issue #12).
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

log = logging.getLogger("polyonnx")


class Steps:
    def __init__(self, total: int, *, stream=None, enabled: bool = True):
        self.total = total
        self.n = 0
        self.stream = stream  # None: the logger only
        self.enabled = enabled
        self.timings: list[tuple[str, float]] = []  # (step, seconds) of every finished step, shown or not

    def _say(self, line: str) -> None:
        if not self.enabled:
            return
        if self.stream is None:
            log.info("%s", line.strip())
        else:  # the CLI: its own lines, not the logger too (a configured root logger would repeat them)
            print(line, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._say(f"      {text}")

    @contextmanager
    def step(self, text: str):
        self.n += 1
        self.total = max(self.total, self.n)
        start = time.perf_counter()
        self._say(f"[{self.n}/{self.total}] {text} ...")
        status = {"result": "ok"}
        try:
            yield status
        except BaseException:
            self._say(f"      failed after {time.perf_counter() - start:.1f} s")
            raise
        self.timings.append((text, time.perf_counter() - start))
        self._say(f"      {status['result']} ({self.timings[-1][1]:.1f} s)")


def silent() -> Steps:
    return Steps(0, enabled=False)


def cli_steps(total: int, quiet: bool) -> Steps:
    """The CLI's progress: lines on stderr unless -q."""
    return silent() if quiet else Steps(total, stream=sys.stderr)
