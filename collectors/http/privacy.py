"""What the collector keeps of a client's IP address: all of it, a truncated prefix, or none."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

__all__ = ["anonymize_ip"]


@lru_cache(maxsize=65_536)  # the same clients come back; ipaddress parsing is slow
def anonymize_ip(ip: str | None, mode: str) -> str | None:
    """``full`` keeps the address, ``truncate`` zeroes past /24 (IPv4) or /48 (IPv6),
    ``drop`` keeps nothing. Anything that is not an IP address is dropped."""
    if ip is None or mode == "drop":
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if mode == "full":
        return str(address)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
