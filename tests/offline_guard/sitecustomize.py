"""Refuse and record every attempt to reach the network: loaded as ``sitecustomize`` by the tests' subprocesses
(``$BOXLOSS_NETWORK_LOG`` names their log), and installed in the test process itself by tests/conftest.py.

Name resolution and connections to anything but this machine (the loopback interface and the addresses of its own
interfaces, which a local Ray cluster binds to) raise ``OSError`` and are recorded: appended to :data:`ATTEMPTS`
(this process's, read by tests/helpers.py around an in-process command) and to the log file if one is named (read
by the tests after a subprocess). The tests assert that both stay empty.
"""

import os
import socket
import traceback

ATTEMPTS: list[str] = []  # every blocked attempt of this process, each with the stack that made it
_LOG: str | None = None
_LOCAL = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


def _record(what: str) -> None:
    entry = f"{what}\n{''.join(traceback.format_stack(limit=40))}\n"
    ATTEMPTS.append(entry)
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(entry)
    raise OSError(f"network access blocked by the boxloss test guard: {what}")


_getaddrinfo, _connect = socket.getaddrinfo, socket.socket.connect


def _remote(host) -> bool:
    return host not in _LOCAL and not str(host).startswith("127.")


def _guarded_getaddrinfo(host, *args, **kwargs):
    if _remote(host):
        _record(f"getaddrinfo({host!r})")
    return _getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and _remote(host):
        _record(f"connect({address!r})")
    return _connect(self, address)


def install(log: str | None = None) -> None:
    """Guard this process from now on; ``log``: a file each attempt is also appended to."""
    global _LOG
    _LOG = log
    try:
        import psutil  # ultralytics' dependency

        _LOCAL.update(addr.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for addr in addrs)
    except ImportError:
        pass
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.socket.connect = _guarded_connect


if os.environ.get("BOXLOSS_NETWORK_LOG"):
    install(os.environ["BOXLOSS_NETWORK_LOG"])
