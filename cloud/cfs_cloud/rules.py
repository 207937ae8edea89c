"""Permission-group rule values as the CFS API takes them (CreateCfsRule / UpdateCfsRule).

Shared by the driver's managed groups and the operator's CfsPermissionGroup so both accept and
normalise exactly the same rules.
"""

from __future__ import annotations

import ipaddress

EVERY_CLIENT = "*"
RW_PERMISSIONS = ("RO", "RW")
USER_PERMISSIONS = ("all_squash", "no_all_squash", "root_squash", "no_root_squash")


def normalize_client(text: str, *, strict: bool = True) -> str:
    """An `AuthClientIp`: '*', one IPv4 address, or an IPv4 CIDR ("单个 IP 或者单个网段"); a /32
    collapses to its address. `strict`: a CIDR with host bits set is refused instead of having
    them cleared. Raises ValueError for anything else (CFS rules are IPv4 only)."""
    if text == EVERY_CLIENT:
        return text
    if "/" not in text:
        return str(ipaddress.IPv4Address(text))
    network = ipaddress.IPv4Network(text, strict=strict)
    return str(network.network_address) if network.num_addresses == 1 else str(network)
