"""Which NFS clients are connected to a ganesha: its established TCP connections.

The vendor lists a file system's clients through a monitoring agent on each client; here the
kernel's socket tables (/proc/net/tcp and tcp6, of this network namespace) say who holds a
connection to a listener. NFSv4 keeps one connection per client for as long as it is mounted
(NFSv3 over TCP too, while it is in use), so a mounted client is listed and an unmounted one
disappears once its connection closes.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cfs_reference.nfs.ganesha_config import Listener

SOCKET_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
ESTABLISHED = "01"


def _address(field: str) -> tuple[str, int]:
    """A /proc/net/tcp[6] address "HEX:PORT" (little-endian 32-bit words) as (IPv4 text, port);
    v4-mapped IPv6 addresses become their IPv4 address."""
    hex_ip, hex_port = field.split(":")
    raw = bytes.fromhex(hex_ip)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address), int(hex_port, 16)


def connected_clients(listener: Listener, tables: tuple[Path, ...] = SOCKET_TABLES) -> list[str]:
    """The distinct client IPs with an established connection to `listener`, sorted."""
    clients: set[str] = set()
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:  # no IPv6 in this kernel: only tcp
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != ESTABLISHED:
                continue
            local_ip, local_port = _address(fields[1])
            if local_port == listener.port and listener.bind_address in (None, local_ip):
                clients.add(_address(fields[2])[0])
    return sorted(clients, key=ipaddress.ip_address)
