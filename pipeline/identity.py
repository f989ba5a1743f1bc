"""Identity resolution: which person an event belongs to. Pure, per device.

Person ids are derived, so the stream and a batch recomputation agree without sharing
state: ``u:<user_id>`` for an identified user, ``a:<anonymous_id>`` for a device nobody has
identified yet. Identity changes are *edges* ("person X is person Y") written to
``autocap.identities``; the warehouse follows them, which re-attributes earlier events.

Rules:

- The first user id seen on a device links the device: edge ``a:<device> -> u:<user>``,
  so the device's anonymous history becomes that user's (retroactively, in the warehouse).
- A device later identified as a *different* user (a shared computer) switches to the new
  user from that event on. The two users are never merged by this: the device's
  anonymous history stays with the first user, and a ``switch`` record is written so the
  ledger shows it.
- ``alias(previousId, userId)`` is the only way to merge two people: edges from
  ``u:<previousId>`` and ``a:<previousId>`` to ``u:<userId>`` (Segment lets previousId be
  either kind of id).

Every record carries what a ledger needs to find and undo a wrong merge: the kind, both
persons, the device, the user ids, the event id and its times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DeviceIdentity",
    "count_device",
    "device_key",
    "person_of_device",
    "person_of_user",
    "resolve",
]


def person_of_user(user_id: str) -> str:
    """The person id of an identified user."""
    return f"u:{user_id}"


def person_of_device(anonymous_id: str) -> str:
    """The person id of a device nobody has identified."""
    return f"a:{anonymous_id}"


def device_key(event: Mapping[str, Any]) -> str:
    """The state key of an event's device: its anonymous id, else its user id."""
    return str(event.get("anonymous_id") or f"user:{event['user_id']}")


@dataclass(frozen=True)
class DeviceIdentity:
    """What the Faust table stores per device: who uses it now, and who first did."""

    anonymous_id: str | None
    user_id: str | None = None
    first_user_id: str | None = None

    @property
    def person_id(self) -> str:
        """The person this device's events belong to right now."""
        if self.user_id is not None:
            return person_of_user(self.user_id)
        return person_of_device(str(self.anonymous_id))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form for the table's changelog."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeviceIdentity:
        """Inverse of ``to_json``."""
        return cls(**data)


def _record(
    kind: str, event: Mapping[str, Any], from_person: str, to_person: str, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "from_person": from_person,
        "to_person": to_person,
        "anonymous_id": event.get("anonymous_id"),
        "user_id": event.get("user_id"),
        "event_id": event["event_id"],
        "timestamp": event.get("timestamp"),
        "received_at": event.get("received_at"),
        **extra,
    }


def resolve(
    state: DeviceIdentity | None, event: Mapping[str, Any]
) -> tuple[DeviceIdentity, str, list[dict[str, Any]]]:
    """Place one event: ``(new device state, the event's person_id, identity records)``."""
    anonymous_id = event.get("anonymous_id")
    user_id = event.get("user_id")
    state = state or DeviceIdentity(anonymous_id=anonymous_id)
    records: list[dict[str, Any]] = []

    if event.get("type") == "alias" and event.get("previous_id") and user_id:
        previous = str(event["previous_id"])
        target = person_of_user(str(user_id))
        for source in (person_of_user(previous), person_of_device(previous)):
            if source != target:
                records.append(_record("alias", event, source, target, previous_id=previous))
        if state.user_id in (None, previous):
            state = DeviceIdentity(anonymous_id, str(user_id), state.first_user_id or str(user_id))
        return state, state.person_id, records

    if user_id is not None and str(user_id) != state.user_id:
        user = str(user_id)
        if state.first_user_id is None:
            if anonymous_id is not None:  # a device's anonymous history joins its first user
                records.append(
                    _record(
                        "link", event, person_of_device(str(anonymous_id)), person_of_user(user)
                    )
                )
            state = DeviceIdentity(anonymous_id, user, user)
        else:  # shared computer: switch, never merge two identified people
            records.append(_record("switch", event, state.person_id, person_of_user(user)))
            state = DeviceIdentity(anonymous_id, user, state.first_user_id)
    return state, state.person_id, records


def count_device(
    devices: list[str], record: Mapping[str, Any], limit: int
) -> tuple[list[str], dict[str, Any] | None]:
    """Track the devices linked to a person (state keyed by person); flag the person once
    when more than ``limit`` devices are linked (a shared login or a bot).

    ``devices`` holds at most ``limit + 1`` ids: enough to know the limit was passed.
    Returns the new list and a ``many_devices`` ledger record the first time it is passed.
    """
    device = record.get("anonymous_id")
    if record.get("kind") != "link" or device is None or device in devices:
        return devices, None
    if len(devices) > limit:  # already flagged; stop growing
        return devices, None
    devices = [*devices, str(device)]
    if len(devices) <= limit:
        return devices, None
    person = str(record["to_person"])
    flag = _record("many_devices", record, person, person, devices=len(devices), limit=limit)
    return devices, flag
