"""Renders nfs-ganesha configuration for one mount target: the server file and its export file.

One ganesha serves one file system at its Listener: <mount IP>:2049 locally, or its own port on
every pod address in a cluster (a Service maps <mount IP>:2049 to it). Its NFSv4 pseudo root
("/") *is* the file system, and in NFSv3 mode a second, v3-only export of the same directory
answers the MOUNT path "/<FSID>" — so `<IP>:/` and `<IP>:/<FSID>` reach that file system and
nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cfs_reference.nfs.model import ExportRule, ExportSpec

NFS_PORT = 2049
# NFSv3 clients ask rpcbind for the MOUNT port. Every instance uses the same port, so whichever
# instance registered last gives the right answer for all mount-target IPs.
MOUNT_PORT = 20048

# Squashed users become nobody/nogroup (the docs' "nfsnobody"), not ganesha's default -2.
ANONYMOUS_ID = 65534
# CFS squash mode -> ganesha Squash value. The docs define no_all_squash only for ordinary users
# ("matched with local users"); the reference keeps every identity, root included.
GANESHA_SQUASH = {
    "all_squash": "all_squash",
    "no_all_squash": "no_root_squash",
    "root_squash": "root_squash",
    "no_root_squash": "no_root_squash",
}
# What an empty permission group means (docs: "如果权限组中没有添加规则，则会允许全部").
ALLOW_EVERYONE = ExportRule(client="*", access="RW", squash="no_root_squash", priority=100)


@dataclass(frozen=True)
class Listener:
    """Where one ganesha accepts connections: bind_address None = every address."""

    bind_address: str | None
    port: int

    def __str__(self) -> str:
        return f"{self.bind_address or '*'}:{self.port}"


def mount_ip_listener(spec: ExportSpec) -> Listener:
    """The local scheme: ganesha binds the mount-target IP itself, on the standard port."""
    return Listener(spec.ip_address, NFS_PORT)


@dataclass(frozen=True)
class InstancePaths:
    """Where one ganesha instance keeps its files (all under the data plane's state dir)."""

    root: Path

    @property
    def server_config(self) -> Path:
        return self.root / "ganesha.conf"

    @property
    def exports_config(self) -> Path:
        return self.root / "exports.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "ganesha.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "ganesha.log"

    @property
    def recovery_dir(self) -> Path:
        return self.root / "recovery"


def quote(value: str) -> str:
    """A ganesha double-quoted string (paths may hold spaces). ganesha's lexer reads
    backslash escapes inside double quotes, so backslashes and quotes are escaped."""
    if "\n" in value:
        raise ValueError(f"cannot quote {value!r} for ganesha: it holds a line break")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def client_match(client: str) -> tuple[int, str]:
    """(breadth, ganesha Clients value) of a rule's client, breadth = 32 - prefix length:
    0 for a single IP, 32 for everyone. The docs: at equal priority a single IP beats its
    network; overlapping networks are unspecified there, and the narrower one wins here."""
    if client == "*":
        return 32, "*"
    network = ipaddress.ip_network(client, strict=False)
    breadth = 32 - network.prefixlen
    if breadth == 0:
        return breadth, str(network.network_address)
    if breadth == 32:
        return breadth, "*"
    return breadth, str(network)  # unquoted: ganesha rejects a quoted CIDR


def ordered_rules(rules: tuple[ExportRule, ...]) -> list[tuple[str, ExportRule]]:
    """Rules in the order ganesha must try them (it uses the first CLIENT block that matches):
    priority 1 first; at equal priority the narrowest client first."""
    effective = rules or (ALLOW_EVERYONE,)
    keyed = []
    for position, rule in enumerate(effective):
        breadth, match = client_match(rule.client)
        keyed.append(((rule.priority, breadth, position), match, rule))
    return [(match, rule) for _, match, rule in sorted(keyed, key=lambda item: item[0])]


def client_blocks(rules: tuple[ExportRule, ...]) -> str:
    lines = []
    for match, rule in ordered_rules(rules):
        lines.append(
            f"    CLIENT {{ Clients = {match}; Access_Type = {rule.access}; "
            f"Squash = {GANESHA_SQUASH[rule.squash]}; }}"
        )
    return "\n".join(lines)


def export_block(export_id: int, data_dir: Path, pseudo: str, protocol: int, clients: str) -> str:
    return (
        "EXPORT {\n"
        f"    Export_Id = {export_id};\n"
        f"    Path = {quote(str(data_dir))};\n"
        f"    Pseudo = {quote(pseudo)};\n"
        f"    Protocols = {protocol};\n"
        "    Transports = TCP;\n"
        "    SecType = sys;\n"
        "    Access_Type = None;\n"  # only the CLIENT blocks grant access
        f"    Anonymous_Uid = {ANONYMOUS_ID}; Anonymous_Gid = {ANONYMOUS_ID};\n"
        "    FSAL { Name = VFS; }\n"
        f"{clients}\n"
        "}\n"
    )


def render_exports(spec: ExportSpec, nfsv3: bool) -> str:
    """The export file of one file system: v4 at the pseudo root, plus v3 at /<FSID>."""
    clients = client_blocks(spec.rules)
    text = f"# {spec.file_system_id} on {spec.ip_address}\n"
    text += export_block(1, spec.data_dir, "/", 4, clients)
    if nfsv3:
        text += export_block(2, spec.data_dir, f"/{spec.fsid}", 3, clients)
    return text


def render_server(paths: InstancePaths, listener: Listener, nfsv3: bool) -> str:
    """The server file: listen on the listener only, no rpcbind unless NFSv3 is on."""
    protocols = "3, 4" if nfsv3 else "4"
    v3_params = f" MNT_Port = {MOUNT_PORT}; Mount_Path_Pseudo = true;" if nfsv3 else ""
    bind = f" Bind_addr = {listener.bind_address};" if listener.bind_address else ""
    return (
        "NFS_CORE_PARAM {"
        f" Protocols = {protocols}; NFS_Port = {listener.port};{bind}"
        f"{v3_params} Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }}\n"
        "NFSV4 { Graceless = true; RecoveryBackend = fs;"
        f" RecoveryRoot = {quote(str(paths.recovery_dir))};"
        # numeric owners: clients without an id mapper (libnfs) see real uids
        " Allow_Numeric_Owners = true; Only_Numeric_Owners = true; }\n"
        "NFS_KRB5 { Active_krb5 = false; }\n"
        # relative to this file's directory: ganesha's %include takes no path holding a
        # space, quote or backslash, while the state dir may
        f"%include {quote(paths.exports_config.name)}\n"
    )
