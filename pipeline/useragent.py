"""Device, browser and OS from a user-agent string (uap's maintained rules, ua-parser)."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from ua_parser import parse

__all__ = ["Agent", "parse_agent"]


class Agent(NamedTuple):
    """What a user agent says about the visitor's software and hardware."""

    browser: str | None
    os: str | None
    device: str | None


@lru_cache(maxsize=16_384)  # a few hundred distinct agents make most traffic
def parse_agent(user_agent: str | None) -> Agent:
    """Browser, OS and device families; all None for a missing or unknown agent."""
    if not user_agent:
        return Agent(None, None, None)
    result = parse(user_agent[:2048])
    return Agent(
        result.user_agent.family if result.user_agent else None,
        result.os.family if result.os else None,
        result.device.family if result.device else None,
    )
