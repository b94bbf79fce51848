"""One benchmark at a time per folder: ``<out>/benchmark.lock`` names the process that holds it (PID and host).

Two benchmarks on one ``out=`` would train into the same run folders, interleave their logs and evaluate each
other's weights; a second terminal, a cron job or a resubmitted job does that silently. So the matrix, and
``summarize`` writing into a folder, hold the folder's lock for as long as they write there, and a second one fails
at once with one line naming the holder::

    benchmark.py: error: out=runs/benchmark/bccd is in use by PID 4242 on host node3 (benchmark.py, since
    2025-01-01T12:00:00+01:00; lock runs/benchmark/bccd/benchmark.lock) ...

How. The lock file is made complete under a temporary name and linked into place (``os.link`` fails if the name
exists: exactly one process wins), and its holder keeps an exclusive ``flock`` on it until it is done, then deletes
it. A lock file whose ``flock`` is free has no living holder on this machine (the kernel drops the ``flock`` of a
process that dies, however it dies); if it names this host and its PID is gone, it is stale and taken over, with a
note. A free lock of another host is not taken over (that host's ``flock`` may not reach this one on a network file
system): the message says to delete it if that benchmark is gone.

A lock file is only ever a regular file this module wrote. It is opened without following a symlink
(``O_NOFOLLOW``) or waiting on a FIFO (``O_NONBLOCK``, after ``lstat``), so a ``benchmark.lock`` planted as a
symlink (or a hard link) to a file elsewhere is never written through; a lock that is a symlink, folder, FIFO,
socket, device, hard link, unreadable or not the JSON written here is refused with one line, and nothing is changed.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
import stat
from pathlib import Path
from typing import Callable, Iterator

from .._io import check_output_folder, irregular_file
from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: the PID alone decides
    fcntl = None

LOCK_NAME = "benchmark.lock"
# never through a symlink, never blocking on a FIFO (0 where the platform has no such flag)
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_EXISTING = os.O_RDWR | _NO_FOLLOW | getattr(os, "O_NONBLOCK", 0)

__all__ = ["LOCK_NAME", "folder_lock", "pid_running"]


def pid_running(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _flock(fd: int) -> bool:
    """An exclusive, non-blocking ``flock`` on ``fd``; False when another open file holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _read_holder(fd: int) -> dict:
    """The lock's record; {} for anything that is not one (not JSON, not an object, nested without end)."""
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        holder = json.loads(os.read(fd, 65536).decode("utf-8"))
    except (ValueError, RecursionError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _is_record(holder: dict) -> bool:
    """Whether ``holder`` is a record :func:`_record` wrote."""
    return isinstance(holder.get("pid"), int) and all(isinstance(holder.get(k), str) for k in ("host", "since"))


def _odd_lock(path: Path, key: str, what: str) -> ConfigError:
    return ConfigError(f"{key}={path.parent}: its lock {path} is {what}, not a lock file boxloss wrote; nothing was "
                       "changed: remove it if no benchmark is running there")


def _describe(holder: dict) -> str:
    return (f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')} ({holder.get('command', '?')}, since "
            f"{holder.get('since', '?')})")


def _record(command: str) -> bytes:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                       "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}).encode()


def _try_create(path: Path, record: bytes) -> int | None:
    """The fd of a new, complete, flocked lock file at ``path``; None if one exists already."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):  # a leftover of a killed process with this PID (a link: not followed)
        tmp.unlink()
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o644)
    try:
        os.write(fd, record)
        _flock(fd)  # nobody else has this file yet
        os.link(tmp, path)
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return fd


def _open_existing(path: Path, key: str) -> int | None:
    """The fd of the existing lock file ``path`` (never through a symlink, never waiting on a FIFO); None when it is
    gone; ConfigError (:func:`_odd_lock`) when it is anything but a regular file that we may read and write."""
    kind = irregular_file(path, follow_symlinks=False)  # lstat: nothing is opened yet
    if kind == "missing":
        return None
    if kind:
        raise _odd_lock(path, key, kind)
    try:
        fd = os.open(path, _OPEN_EXISTING)
    except FileNotFoundError:
        return None
    except OSError as error:  # unreadable, or replaced by a symlink (ELOOP) or a FIFO (ENXIO) since the lstat
        raise _odd_lock(path, key, f"not readable ({error.strerror or error})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _odd_lock(path, key, "not a regular file")
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.lstat(path).st_ino
    except FileNotFoundError:
        return False


def _acquire(path: Path, key: str, command: str, note: Callable[[str], None]) -> int:
    record = _record(command)
    for _ in range(100):  # each pass: create it, or judge the one there; a lock released meanwhile is retried
        fd = _try_create(path, record)
        if fd is not None:
            return fd
        fd = _open_existing(path, key)
        if fd is None:
            continue
        try:
            if not _flock(fd):
                holder = _read_holder(fd)
                raise ConfigError(f"{key}={path.parent} is in use by {_describe(holder)}; lock {path}. Wait for it "
                                  f"to finish, or use another {key}=")
            if not _same_file(fd, path):  # released or replaced while we looked: look again
                os.close(fd)
                continue
            links = os.fstat(fd).st_nlink  # our own lock has two for an instant, but then its flock is held
            if links != 1:
                raise _odd_lock(path, key, f"a file with {links} hard links (one may lie outside {key}=)")
            holder = _read_holder(fd)
            if not _is_record(holder):
                raise _odd_lock(path, key, "not the JSON record of a holder")
            pid, host = holder.get("pid"), holder.get("host")
            if host != socket.gethostname() or not isinstance(pid, int):
                raise ConfigError(f"{key}={path.parent} is locked by {_describe(holder)}, which this host cannot "
                                  f"check; if that benchmark is gone, delete {path}")
            if fcntl is None and pid_running(pid):
                raise ConfigError(f"{key}={path.parent} is in use by {_describe(holder)}; lock {path}")
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, record)
            gone = "no longer running" if not pid_running(pid) else "running, but not holding the lock (a reused PID)"
            note(f"took over the stale lock {path} of PID {pid} on this host ({gone})")
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
    raise ConfigError(f"{key}={path.parent}: could not take its lock {path} (it kept changing)")


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, key: str = "out", command: str = "benchmark.py",
                note: Callable[[str], None] = print) -> Iterator[Path]:
    """Hold ``<folder>/benchmark.lock`` for the block (module docstring); ConfigError naming the holder if held.

    ``folder`` is created if needed (and removed again, with the parents created for it, if it is empty when the
    block ends: a refused command leaves nothing behind). ``key`` names the argument in messages (``out``,
    ``into``); ``note`` receives the one line said when a stale lock is taken over.
    """
    check_output_folder(folder, key)
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    try:
        fd = _acquire(path, key, command, note)
    except BaseException:
        _remove_created(created)
        raise
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before the flock goes: whoever opens it next finds it replaced, or gone
        os.close(fd)
        _remove_created(created)


def _remove_created(created: list[Path]) -> None:
    for folder in created:  # deepest first; only while empty
        with contextlib.suppress(OSError):
            folder.rmdir()
