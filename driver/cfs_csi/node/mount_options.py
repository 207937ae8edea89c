"""NFS mount options: the vendor's recommended defaults, merged with user options, allowlisted.

The CFS docs recommend, per protocol version:
- NFSv4: `mount -t nfs -o vers=4.0,noresvport,hard,timeo=600,retrans=2 <ip>:/<path>`
- NFSv3: `mount -t nfs -o vers=3,nolock,proto=tcp,noresvport,hard,timeo=600,retrans=2 <ip>:/<fsid>/<path>`

User options come from the PV / StorageClass `mountOptions` (the capability's mount flags) and
the `mountOptions` volume-context key. A user option replaces the default with the same key
(`vers=4.1` replaces `vers=4.0`, `soft` replaces `hard`, `resvport` replaces `noresvport`).
Only known NFS mount options pass: the option string ends up as one `-o` argument of mount,
where a smuggled comma would add an option nobody reviewed, so every value is checked against
a precise pattern and anything else raises `MountOptionError` naming the option.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cfs_csi.contract import NFS_V3, NFS_V4

# volume_capability.mount.fs_type values that mean NFS (empty: the CO left it to the plugin).
NFS_FS_TYPES = ("", "nfs", "nfs4")

DEFAULT_OPTIONS = {
    NFS_V4: ("vers=4.0", "noresvport", "hard", "timeo=600", "retrans=2"),
    NFS_V3: ("vers=3", "nolock", "proto=tcp", "noresvport", "hard", "timeo=600", "retrans=2"),
}


class MountOptionError(ValueError):
    """A user mount option is unknown, malformed or conflicts with another one."""


@dataclass(frozen=True)
class ValueRule:
    """How to check the value of a `name=value` option, and how to describe the allowed values."""

    allowed: str
    check: Callable[[str], bool]


def _choice(*values: str) -> ValueRule:
    return ValueRule(", ".join(values), lambda value: value in values)


def _integer(low: int, high: int) -> ValueRule:
    return ValueRule(
        f"an integer from {low} to {high}", lambda value: value.isdigit() and low <= int(value) <= high
    )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


SECURITY_FLAVOURS = ("sys", "krb5", "krb5i", "krb5p", "none")
_SECONDS = _integer(0, 3600)

# name=value options of nfs(5) (and the generic ones that make sense for NFS).
VALUE_OPTIONS: dict[str, ValueRule] = {
    "vers": _choice("3", "4", "4.0", "4.1", "4.2"),
    "nfsvers": _choice("3", "4", "4.0", "4.1", "4.2"),
    "minorversion": _integer(0, 2),
    "proto": _choice("tcp", "tcp6", "udp", "udp6", "rdma", "rdma6"),
    "mountproto": _choice("tcp", "tcp6", "udp", "udp6"),
    "mountvers": _choice("1", "2", "3"),
    "port": _integer(0, 65535),
    "mountport": _integer(0, 65535),
    "timeo": _integer(1, 6000),
    "retrans": _integer(0, 100),
    "retry": _integer(0, 10000),
    "rsize": _integer(1024, 1048576),
    "wsize": _integer(1024, 1048576),
    "acregmin": _SECONDS,
    "acregmax": _SECONDS,
    "acdirmin": _SECONDS,
    "acdirmax": _SECONDS,
    "actimeo": _SECONDS,
    "nconnect": _integer(1, 16),
    "namlen": _integer(1, 255),
    "sec": ValueRule(
        f"one or more of {', '.join(SECURITY_FLAVOURS)} separated by ':'",
        lambda value: all(part in SECURITY_FLAVOURS for part in value.split(":")),
    ),
    "lookupcache": _choice("all", "none", "pos", "positive"),
    "local_lock": _choice("none", "all", "flock", "posix"),
    "clientaddr": ValueRule("an IP address", _is_ip),
    "mountaddr": ValueRule("an IP address", _is_ip),
}

# Flags, grouped by the setting they choose: a user flag replaces any default of its group.
FLAG_GROUPS: dict[str, tuple[str, ...]] = {
    "hard": ("hard", "soft", "softerr"),
    "intr": ("intr", "nointr"),
    "ac": ("ac", "noac"),
    "cto": ("cto", "nocto"),
    "lock": ("lock", "nolock"),
    "resvport": ("resvport", "noresvport"),
    "sharecache": ("sharecache", "nosharecache"),
    "rdirplus": ("rdirplus", "nordirplus"),
    "acl": ("acl", "noacl"),
    "fsc": ("fsc", "nofsc"),
    "ro": ("ro", "rw"),
    "atime": ("atime", "noatime", "relatime", "norelatime", "strictatime"),
    "diratime": ("diratime", "nodiratime"),
    "_netdev": ("_netdev",),
    # Hardening flags (CIS-style PV mountOptions) only take rights away; their opposites, which
    # would grant them, stay unknown.
    "nosuid": ("nosuid",),
    "nodev": ("nodev",),
    "noexec": ("noexec",),
}
FLAG_SETTING = {flag: setting for setting, flags in FLAG_GROUPS.items() for flag in flags}
# `nfsvers` is the older spelling of `vers`; both choose the same setting.
VALUE_SETTING = {name: ("vers" if name == "nfsvers" else name) for name in VALUE_OPTIONS}

ALLOWED_NAMES = tuple(sorted([*VALUE_OPTIONS, *FLAG_SETTING]))


@dataclass(frozen=True)
class MountOption:
    text: str  # exactly as it will be passed to mount, e.g. "timeo=600"
    setting: str  # what it chooses; two options with one setting replace each other

    @classmethod
    def parse(cls, text: str) -> MountOption:
        name, has_value, value = text.partition("=")
        if name in FLAG_SETTING:
            if has_value:
                raise MountOptionError(f"mount option {text!r}: {name} takes no value")
            return cls(text, FLAG_SETTING[name])
        rule = VALUE_OPTIONS.get(name)
        if rule is None:
            # Only the name: a value of an unknown option may be a credential (CSI mount flags).
            raise MountOptionError(
                f"mount option {name!r} is not allowed: not a known NFS mount option; "
                f"allowed options: {', '.join(ALLOWED_NAMES)}"
            )
        if not has_value or not rule.check(value):
            raise MountOptionError(
                f"mount option {text!r}: invalid value {value!r} for {name}; allowed: {rule.allowed}"
            )
        return cls(text, VALUE_SETTING[name])

    @property
    def value(self) -> str:
        return self.text.partition("=")[2]


@dataclass(frozen=True)
class NfsMountOptions:
    """The protocol family the options select ("3" or "4") and the final `-o` list."""

    vers: str
    options: tuple[str, ...]

    def joined(self) -> str:
        return ",".join(self.options)


def parse_user_options(entries: Iterable[str]) -> list[MountOption]:
    """Each entry may hold several comma-separated options (`mountOptions: "noac,actimeo=3"`).

    Empty items (a trailing comma) are dropped; repeating an option is fine; choosing two
    different values for one setting (`hard` and `soft`) is an error.
    """
    chosen: dict[str, MountOption] = {}
    for entry in entries:
        for item in entry.split(","):
            text = item.strip()
            if not text:
                continue
            option = MountOption.parse(text)
            earlier = chosen.get(option.setting)
            if earlier is not None and earlier.text != option.text:
                raise MountOptionError(
                    f"mount options {earlier.text!r} and {option.text!r} conflict; give only one"
                )
            chosen[option.setting] = option
    return list(chosen.values())


def nfs_mount_options(
    vers: str, user_entries: Iterable[str] = (), read_only: bool = False
) -> NfsMountOptions:
    """Merge user options into the docs' defaults for `vers` ("3" or "4").

    A user `vers`/`nfsvers` option decides the protocol family (and so which defaults apply);
    defaults keep their order with user values in place, other user options follow.
    `read_only` (a read-only publish or access mode) adds `ro`, which a user `rw` contradicts.
    """
    if vers not in DEFAULT_OPTIONS:
        raise MountOptionError(f"NFS version {vers!r} is invalid; allowed: {NFS_V3}, {NFS_V4}")
    user = {option.setting: option for option in parse_user_options(user_entries)}
    if read_only:
        chosen = user.setdefault("ro", MountOption.parse("ro"))
        if chosen.text != "ro":
            raise MountOptionError(
                f"mount option {chosen.text!r} contradicts the read-only request (readonly, or a "
                "reader-only access mode such as ReadOnlyMany); remove it"
            )
    if "vers" in user:
        vers = NFS_V3 if user["vers"].value == "3" else NFS_V4
    merged = []
    for default in map(MountOption.parse, DEFAULT_OPTIONS[vers]):
        merged.append(user.pop(default.setting, default).text)
    merged.extend(option.text for option in user.values())
    return NfsMountOptions(vers, tuple(merged))
