"""Ctrl-C and SIGTERM end a run the same way: kept light (no torch) so every command can
install it."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (GitLab's cancel, ``docker stop``, ``timeout``, SLURM), raised in the main thread
    so that it unwinds exactly like Ctrl-C: ``finally`` blocks run, finished cells are kept."""

    exit_code = 143


# The interrupts raised since the last check. Python drops an exception raised inside a
# finalizer (a ``__del__`` or weakref callback that the garbage collector runs between cells)
# with an "Exception ignored" line: the signal would be lost and the run would go on.
_raised: list[KeyboardInterrupt] = []


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _raise(Terminated())


def _raise_interrupted(signum, frame):
    _raise(KeyboardInterrupt())


def _raise(exc: KeyboardInterrupt):
    _raised.append(exc)
    raise exc


def _hide_lost(previous):
    """An unraisable-exception hook that leaves out the interrupts ``raise_if_lost`` raises
    again (the run's one line says what happened), and hands on anything else."""
    def hook(unraisable):
        if not any(unraisable.exc_value is exc for exc in _raised):
            previous(unraisable)
    return hook


def raise_if_lost() -> None:
    """Raise again an interrupt that was raised and swallowed (see ``_raised``); a no-op when
    none was, or when it unwound as it should (``interrupts_unwind`` forgets it then), and in
    any thread but the main one (where the signal handlers raise)."""
    if _raised and threading.current_thread() is threading.main_thread():
        exc = _raised[-1]
        _raised.clear()
        raise exc


@contextlib.contextmanager
def interrupts_unwind():
    """While inside, SIGTERM raises ``Terminated`` and Ctrl-C ``KeyboardInterrupt`` in the main
    thread (SIGTERM once: a second one during the clean-up is ignored, SIGKILL still ends
    everything); a Ctrl-C that is ignored here (a worker's) stays ignored."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is _raise_terminated:      # nested: already on
        yield
        return
    previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupted)
    previous_hook, sys.unraisablehook = sys.unraisablehook, _hide_lost(sys.unraisablehook)
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        _raised.clear()
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
