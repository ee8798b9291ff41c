"""Absolute deadlines for network operations: every socket of an operation is shut down when
its deadline passes, whatever it is doing.

    with Deadline(3.0) as deadline:
        sock = deadline.connect(("127.0.0.1", 8080))   # connect within the time left
        ...                                              # every recv: ends by the deadline
    if deadline.expired: ...

A socket timeout bounds one ``recv``; a server that sends one byte before each timeout holds
a reader for ever. Here one watchdog thread keeps the deadlines of all operations in a heap and,
when one passes, calls ``shutdown(SHUT_RDWR)`` on each socket the operation registered
(:meth:`Deadline.watch`): a blocked ``recv`` returns at once (end of stream), a later one too,
for plain and TLS sockets alike. The code that reads then sees an incomplete answer, and
:attr:`Deadline.expired` says why. Deadlines nest per thread: an inner one never ends later
than the one around it, and :func:`current` is the innermost, so a library that opens sockets
deep inside (urllib3, see ``checks/_web.py``) registers them with the operation that runs.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import signal
import socket
import threading
import time
import weakref
from types import TracebackType
from typing import Self

__all__ = ["Deadline", "current", "signals_to_main_thread"]

_local = threading.local()
#: the deadline each watched socket belongs to now (one at a time)
_owners: weakref.WeakKeyDictionary[socket.socket, Deadline] = weakref.WeakKeyDictionary()
_owners_lock = threading.Lock()
#: seconds the watchdog thread waits without deadlines before it ends
_IDLE_S = 10.0


def signals_to_main_thread() -> None:
    """Called first in a helper thread that never starts a process (a child would inherit
    the mask): Ctrl-C and SIGTERM are never delivered to it.

    Python runs signal handlers in the main thread only. A process-directed signal that the
    kernel hands to another thread (it may pick any thread that does not block it, e.g. when
    the main one has a signal pending) sets a flag and nothing more: the main thread, blocked
    in a ``poll`` on a command's pipes or in a sleep, is not woken, and the interrupt waits
    until that wait ends by itself (a command's whole bound). Blocked here, the signal goes to
    the main thread and ends its wait at once."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def current() -> Deadline | None:
    """The innermost deadline entered in this thread (None outside any)."""
    stack: list[Deadline] | None = getattr(_local, "stack", None)
    return stack[-1] if stack else None


class Deadline:
    """An absolute time (monotonic clock) by which an operation's sockets are shut down."""

    __slots__ = ("_expired", "_lock", "_sockets", "at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = max(float(seconds), 0.0)
        self.at = time.monotonic() + self.seconds
        outer = current()
        if outer is not None and outer.at < self.at:
            self.at = outer.at
        self._expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left; :class:`TimeoutError` when none is."""
        left = self.at - time.monotonic()
        if left <= 0:
            self._expired = True
            raise TimeoutError(f"not done within {self.seconds:g} s")
        return left

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed: also before the watchdog thread got to it (on a
        busy machine a socket's own timeout, set to the time left, can fire first), so that
        whichever bound ends an operation, the caller names the deadline's."""
        if not self._expired and time.monotonic() >= self.at:
            self._expired = True
        return self._expired

    def watch(self, sock: socket.socket) -> socket.socket:
        """Shut ``sock`` down when the deadline passes (at once if it has).

        A socket has one deadline at a time: watching it here takes it from the deadline of
        the operation that used it before (a pooled connection that another thread took
        while that operation was still inside its block), so that deadline can no longer
        cut the answer this one reads (a body read until the end of the stream would look
        complete)."""
        with _owners_lock:
            previous = _owners.get(sock)
            _owners[sock] = self
        if previous is not None and previous is not self:
            with previous._lock:  # waits for a shutdown under way, then forgets the socket
                previous._sockets = [s for s in previous._sockets if s is not sock]
        with self._lock:
            if not self._expired:
                self._sockets.append(sock)
                return sock
        _shutdown(sock)
        return sock

    def connect(self, address: tuple[str, int]) -> socket.socket:
        """A TCP connection made within the time left, watched."""
        sock = socket.create_connection(address, timeout=self.remaining())
        sock.settimeout(max(self.at - time.monotonic(), 0.001))
        return self.watch(sock)

    def _expire(self) -> None:
        # under the lock: the operation's thread, leaving the block, waits for it, so no
        # socket is shut down after its owner moved on (and its descriptor was reused)
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shutdown(sock)
            self._sockets = []

    def __enter__(self) -> Self:
        stack: list[Deadline] | None = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append(self)
        _watchdog.add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _watchdog.remove(self)
        with self._lock:
            self._sockets = []
        stack: list[Deadline] = _local.stack
        if stack and stack[-1] is self:
            stack.pop()
        elif self in stack:
            stack.remove(self)


def _shutdown(sock: socket.socket) -> None:
    # the plain socket's shutdown, also for an SSLSocket: its own would drop the TLS object
    # under a thread that may be reading through it
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that expires deadlines in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._live: set[int] = set()
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._count), deadline))
            self._live.add(id(deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fwgates-deadlines")
                self._thread.daemon = True
                self._thread.start()
            self._cond.notify()

    def remove(self, deadline: Deadline) -> None:
        with self._cond:
            self._live.discard(id(deadline))

    def _run(self) -> None:
        signals_to_main_thread()
        while True:
            with self._cond:
                while self._heap and id(self._heap[0][2]) not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    # idle: wait a while for the next deadline, then end (one is started
                    # again when a deadline comes)
                    if not self._cond.wait(_IDLE_S) and not self._heap:
                        self._thread = None
                        return
                    continue
                at, _, deadline = self._heap[0]
                left = at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(id(deadline))
            deadline._expire()

    def reset(self) -> None:
        """In a forked child: the parent's thread does not exist there."""
        self._heap, self._live = [], set()
        self._cond = threading.Condition()
        self._thread = None


def _after_fork_in_child() -> None:
    global _owners_lock
    _watchdog.reset()
    _owners_lock = threading.Lock()  # a thread of the parent may have held it
    _owners.clear()


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_after_fork_in_child)
