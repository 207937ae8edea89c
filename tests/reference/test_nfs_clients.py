"""cfs_reference.nfs.clients reads who is connected to a ganesha from the kernel's socket tables;
tests/vm/ shows a real kernel client listed by DescribeCfsFileSystemClients."""

import socket

from cfs_reference.nfs.clients import connected_clients
from cfs_reference.nfs.ganesha_config import Listener

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def row(local: str, remote: str, state: str) -> str:
    return f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 1 1\n"


def test_established_connections_to_the_listener_name_their_clients(tmp_path):
    tcp, tcp6 = tmp_path / "tcp", tmp_path / "tcp6"
    tcp.write_text(
        HEADER
        + row("0210107F:0801", "0200007F:C350", "01")  # 127.16.16.2:2049 <- 127.0.0.2
        + row("0210107F:0801", "0300007F:C351", "06")  # TIME_WAIT: gone
        + row("0210107F:0802", "0400007F:C352", "01")  # another port
        + row("0310107F:0801", "0500007F:C353", "01")  # another mount target
    )
    # ganesha's v4-mapped IPv6 socket: ::ffff:127.16.16.2:2049 <- ::ffff:10.0.0.9
    tcp6.write_text(
        HEADER + row("0000000000000000FFFF00000210107F:0801", "0000000000000000FFFF00000900000A:D000", "01")
    )
    listener = Listener("127.16.16.2", 2049)
    assert connected_clients(listener, (tcp, tcp6)) == ["10.0.0.9", "127.0.0.2"]
    assert connected_clients(Listener(None, 2050), (tcp, tcp6)) == ["127.0.0.4"]
    assert connected_clients(listener, (tmp_path / "missing",)) == []


def test_a_live_connection_on_this_machine_is_seen():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    try:
        assert connected_clients(Listener("127.0.0.1", port)) == ["127.0.0.1"]
    finally:
        for sock in (client, accepted, server):
            sock.close()
