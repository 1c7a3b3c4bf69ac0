"""SIGTERM handled like Ctrl-C: kept light (no torch) so every command can install it."""
from __future__ import annotations

import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (GitLab's cancel, ``docker stop``, ``timeout``, SLURM), raised in the main thread
    so that it unwinds exactly like Ctrl-C: ``finally`` blocks run, finished cells are kept."""

    exit_code = 143


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


@contextlib.contextmanager
def sigterm_unwinds():
    """While inside, SIGTERM raises ``Terminated`` in the main thread (once: a second SIGTERM
    during the clean-up is ignored, SIGKILL still ends everything)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is _raise_terminated:      # nested: already on
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
