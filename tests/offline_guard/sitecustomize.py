"""Loaded by subprocesses of the tests: refuse and record every attempt to reach the network.

Name resolution and connections to anything but this machine (the loopback interface and the addresses of its own
interfaces, which a local Ray cluster binds to) raise ``OSError`` and append a line to ``$BOXLOSS_NETWORK_LOG``;
the offline test asserts that the log stays empty.
"""

import os
import socket
import traceback

_LOG = os.environ.get("BOXLOSS_NETWORK_LOG")
_LOCAL = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
if _LOG:
    try:
        import psutil  # ultralytics' dependency

        _LOCAL |= {addr.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for addr in addrs}
    except ImportError:
        pass


def _record(what: str) -> None:
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"{what}\n{''.join(traceback.format_stack(limit=40))}\n")
    raise OSError(f"network access blocked by the boxloss test guard: {what}")


_getaddrinfo, _connect = socket.getaddrinfo, socket.socket.connect


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host not in _LOCAL and not str(host).startswith("127."):
        _record(f"getaddrinfo({host!r})")
    return _getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOCAL and not str(host).startswith("127."):
        _record(f"connect({address!r})")
    return _connect(self, address)


if _LOG:
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.socket.connect = _guarded_connect
