"""Progress reports that suit both a terminal and a log file.

On a terminal (or in a notebook) `progress_bar` is a tqdm bar. When stderr is a file or a
pipe, as in a batch job, a tqdm bar writes every update as a carriage-return line (a
10,000-glacier fit left ~160 KB of them); there it is a `LogProgress`, which prints a
plain line at every further tenth of the work, or after `LOG_INTERVAL` seconds, and one
at the end.
"""

import sys
import time

LOG_INTERVAL = 30.0
"""Seconds after which a log line is printed even if the next tenth is not reached."""


def _interactive(stream) -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if type(shell).__name__ == "ZMQInteractiveShell":  # a notebook kernel: tqdm.auto draws a widget
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(total, desc: str, *, disable: bool = False, initial: int = 0, unit: str = "it", file=None):
    """A tqdm bar on a terminal or in a notebook, else a `LogProgress` (same methods:
    `update`, `set_postfix`, `set_postfix_str`, `close`, context manager)."""
    stream = sys.stderr if file is None else file
    if _interactive(stream):
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=disable, file=file)
    return LogProgress(total, desc, disable=disable, initial=initial, unit=unit, file=stream)


class LogProgress:
    """Plain progress lines for logs: `desc: n/total unit (p %), elapsed s[, postfix]`."""

    def __init__(self, total, desc: str, *, disable: bool = False, initial: int = 0, unit: str = "it", file=None):
        self.total, self.desc, self.disable, self.unit = total, desc, disable, unit
        self.n = initial
        self.file = sys.stderr if file is None else file
        self.postfix = ""
        self.start = self.last_time = time.monotonic()
        self.last_tenth = self._tenth()
        self.written, self.closed = None, False

    def _tenth(self) -> int:
        return int(10 * self.n / self.total) if self.total else 0

    def _write(self):
        if self.disable:
            return
        share = f" ({int(100 * self.n / self.total)} %)" if self.total else ""  # floor: 100 % only at the end
        total = f"/{self.total}" if self.total is not None else ""
        postfix = f", {self.postfix}" if self.postfix else ""
        elapsed = time.monotonic() - self.start
        self.written = self.n
        print(f"{self.desc}: {self.n}{total} {self.unit}{share}, {elapsed:.0f} s{postfix}", file=self.file, flush=True)

    def update(self, n: int = 1):
        self.n += n
        now, tenth = time.monotonic(), self._tenth()
        if tenth > self.last_tenth or now - self.last_time >= LOG_INTERVAL:
            self._write()
            self.last_tenth, self.last_time = tenth, now

    def set_postfix(self, **values):
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_postfix_str(self, text: str = ""):
        self.postfix = text

    def close(self):
        if not self.closed:
            self.closed = True
            if self.n != self.written:
                self._write()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
