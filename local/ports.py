"""Free TCP ports on 127.0.0.1, for servers that must be told their port up front."""

from __future__ import annotations

import socket


def port_in_use(port: int, address: str = "127.0.0.1") -> bool:
    """Whether something on `address` (127.0.0.1) holds `port` already."""
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return True
        return False


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; bind promptly)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
