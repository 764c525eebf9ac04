"""The CLI's one progress logger: a flushed line per step, on stdout or stderr.

Commands whose standard output carries data (``predict -o -``, ``embed``) log
on stderr; the others on stdout.  The stream is looked up at every call, so a
redirected ``sys.stdout`` / ``sys.stderr`` (pytest's ``capsys``) is honoured.
"""

import sys
import time

__all__ = ["ProgressLog"]


class ProgressLog:
    """Print progress lines, optionally stamped with the seconds elapsed.

    Parameters
    ----------
    stream : {"stdout", "stderr"}, default="stdout"
    elapsed : bool, default=False
        Prefix each line with ``[  12.3s]``, the time since the log was made.

    Examples
    --------
    >>> log = ProgressLog()
    >>> log("rendering clips")
    rendering clips
    """

    def __init__(self, stream="stdout", *, elapsed=False):
        self.stream = stream
        self.elapsed = elapsed
        self.start = time.perf_counter()

    def seconds(self):
        """Seconds since the log was made."""
        return time.perf_counter() - self.start

    def __call__(self, message=""):
        if self.elapsed and message:
            message = f"[{self.seconds():6.1f}s] {message}"
        print(message, file=getattr(sys, self.stream), flush=True)
