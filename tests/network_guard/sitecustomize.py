"""Cuts a test's server process off the network, and keeps a record of every attempt.

Python imports `sitecustomize` at start-up from the path, so a process started with this folder
on PYTHONPATH and SPECLSP_NETWORK_LOG set refuses every name lookup and every IP connect, and
writes each attempt to that file. The test then asserts the file stayed empty.
"""

import os
import socket

_LOG = os.environ.get("SPECLSP_NETWORK_LOG")
_connect = socket.socket.connect


def _record(what) -> None:
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(f"{what!r}\n")
    raise OSError("network access refused in this test")


def _lookup(host, *args, **kwargs):
    _record(("getaddrinfo", host))


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _record(("connect", address))
    return _connect(self, address)


if _LOG:
    socket.getaddrinfo = _lookup
    socket.socket.connect = _guarded_connect
