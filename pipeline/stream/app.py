"""The Faust app for stages 1 and 2, built from settings (no module-level app, no globals).

Agents are thin: decode, call the pure rule, send. Anything undecodable is dead-lettered and
acknowledged so one bad record never blocks a partition.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any, cast

import faust
import orjson

from pipeline.accounts import (
    AccountState,
    account_record,
    account_updates,
    fold_account,
    forget_members,
)
from pipeline.cohorts import account_facts, cohort_plan
from pipeline.deadletter import dead_letter_record
from pipeline.definitions import Definitions, load_definitions
from pipeline.errors import InvalidEvent
from pipeline.forget.record import forget_keys
from pipeline.identity import DeviceIdentity, count_device, device_key
from pipeline.metrics import WorkerMetrics
from pipeline.profiles import ProfileState, fold_profile, profile_record
from pipeline.seeds import COHORT_PART, apply_profile_seed, is_seed
from pipeline.sessions import SessionRules, SessionState, summarize_idle
from pipeline.settings import Settings
from pipeline.stream.cohort_stage import CohortStage
from pipeline.stream.enrich import decode_raw, process
from pipeline.stream.positions import HoleWatch, holes
from pipeline.timeutil import format_ts, utc_now

__all__ = ["Sender", "create_app"]

log = logging.getLogger(__name__)


def _raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    # Values stay bytes: we decode with orjson ourselves and own the error handling.
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def _table(app: faust.App, name: str, partitions: int) -> Any:
    # Plain JSON values (our dataclasses' to_json forms): Faust recovers a table from its
    # changelog through the serializer, and a typed value_type would need a Faust Record.
    schema: Any = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    return app.Table(name, partitions=partitions, schema=schema)


class Sender:
    """Send records straight to the producer, skipping Faust's per-message attachments.

    At least once still holds: before Faust commits a source offset it flushes the producer
    (``Consumer._commit_offsets``), so every record sent while processing an acknowledged
    event is acknowledged by Kafka first. A record Kafka finally refuses crashes the worker,
    which is what Faust does with attached messages too.

    With ``transactional`` (Faust's exactly_once, on a real cluster) records go through the
    topic instead, so they belong to the transaction that commits their source offsets.
    """

    def __init__(self, app: faust.App, transactional: bool = False) -> None:
        self._app = app
        self._transactional = transactional
        self.crashing: asyncio.Future[Any] | None = None

    async def __call__(self, topic: Any, key: bytes | None, value: bytes) -> None:
        if self._transactional:
            await topic.send(key=key, value=value)
            return
        sent = await self._app.producer.send(topic.get_topic_name(), key, value, None, None, None)
        cast(asyncio.Future[Any], sent).add_done_callback(self._check)

    def _check(self, future: asyncio.Future[Any]) -> None:
        failed = not future.cancelled() and future.exception() is not None
        if failed and self.crashing is None:
            exc = future.exception()
            assert exc is not None
            self.crashing = asyncio.ensure_future(self._app.crash(exc))


def create_app(settings: Settings, bootstrap: str, metrics: WorkerMetrics) -> faust.App:
    """Build stage 1: ``raw`` → identity and sessions → ``enriched`` (keyed by person_id),
    ``identities`` and ``sessions``; and stage 2 unless ``worker_stage2`` is off."""
    session_timeout = settings.consumer_session_timeout_s
    # One folder per worker: RocksDB locks its files, and workers on one host differ by
    # their metrics port.
    datadir = settings.data_dir / "worker" / str(settings.worker_metrics_port)
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.group_id("stream"),
        broker=f"kafka://{bootstrap}",
        store=f"{settings.worker_store}://",
        datadir=str(datadir),
        processing_guarantee="exactly_once" if settings.kafka_idempotence else "at_least_once",
        producer_acks=-1,
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=max(0.1, session_timeout / 5),
        broker_rebalance_timeout=max(2.0, session_timeout * 2),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=False,
        autodiscover=False,
    )
    raw = _raw_topic(app, settings.topic("raw"), settings.partitions)
    enriched = _raw_topic(app, settings.topic("enriched"), settings.partitions)
    dead_letter = _raw_topic(app, settings.topic("dead_letter"), settings.partitions)
    identities = _raw_topic(app, settings.topic("identities"), settings.partitions)
    sessions_topic = _raw_topic(app, settings.topic("sessions"), settings.partitions)
    # Per-device state, co-partitioned with `raw` (same key, same partition count): identity
    # and session in one value, so one changelog record saves both. Two tables could come
    # back from a crash at different points (their changelog batches flush independently),
    # and a replay would then miss the session's memory of it while the identity already
    # moved on (the replayed event was attributed to the person linked after it).
    devices = _table(app, "devices", settings.partitions)
    rules = SessionRules(
        timedelta(minutes=settings.session_inactivity_minutes),
        timedelta(hours=settings.session_max_hours),
    )
    summarized: set[str] = set()  # idle sessions already announced by this worker
    definitions = load_definitions(settings.definitions_path)

    send = Sender(app, transactional=settings.kafka_idempotence)

    async def send_sessions(records: list[dict[str, Any]]) -> None:
        for summary_record in records:
            await send(
                sessions_topic, summary_record["session_id"].encode(), orjson.dumps(summary_record)
            )

    async def stage1(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if (forgotten := forget_keys(event.value)) is not None:
                _forget(devices, forgotten)  # `autocap forget`: nothing else to do
                continue
            try:
                record = decode_raw(event.value)
            except InvalidEvent as exc:
                metrics.events_dead_lettered.labels("stage1", exc.rule).inc()
                await send(
                    dead_letter,
                    None,
                    dead_letter_record(
                        stage="stage1",
                        reason=exc.rule,
                        field=exc.field,
                        message=str(exc),
                        payload=event.value or b"",
                        received_at=utc_now(),
                    ),
                )
                continue
            key = device_key(record)
            saved = devices.get(key) or {}
            saved_identity, saved_session = saved.get("identity"), saved.get("session")
            identity, session, out = process(
                DeviceIdentity.from_json(saved_identity) if saved_identity else None,
                SessionState.from_json(saved_session) if saved_session else None,
                record,
                rules,
                definitions,
            )
            # Assign back (Faust only changelogs assignments), and only what changed.
            state = {
                "identity": identity.to_json(),
                "session": session.to_json() if session is not None else saved_session,
            }
            if state != saved:
                devices[key] = state
            if session is not None:
                summarized.discard(session.session_id)
            for change in out.identities:
                await send(identities, change["to_person"].encode(), orjson.dumps(change))
            await send_sessions(out.sessions)
            person = out.enriched["person_id"]
            await send(enriched, str(person).encode(), orjson.dumps(out.enriched))

    async def close_idle_sessions() -> None:
        now = utc_now()
        # Times are stored in one ISO spelling, so strings compare as times: sessions with a
        # recent event are skipped without decoding their state.
        quiet_since = format_ts(now - rules.inactivity)
        for saved in list(devices.values()):
            session = saved.get("session")
            if not session or session["last"] >= quiet_since:
                continue
            state = SessionState.from_json(session)
            if state.session_id in summarized:
                continue
            _, idle = summarize_idle(state, now, rules)
            if idle is not None:
                summarized.add(state.session_id)
                await send_sessions([idle])

    person_devices = _table(app, "person_devices", settings.partitions)

    async def count_devices(stream: faust.StreamT[bytes]) -> None:
        # Keyed by person (the identities topic's key), so each person's count is local.
        async for event in stream.events():
            if (forgotten := forget_keys(event.value)) is not None:
                _forget(person_devices, forgotten)
                continue
            try:
                change = orjson.loads(event.value)
                person = change["to_person"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # not ours to judge: the sink dead-letters what it cannot store
            known = person_devices.get(person)
            linked, flag = count_device(known or [], change, settings.max_devices_per_person)
            if flag is not None or linked != known:
                person_devices[person] = linked
            if flag is not None:
                await send(identities, person.encode(), orjson.dumps(flag))

    watch = HoleWatch()

    async def rewind_holes() -> None:
        # Records Faust dropped after fetching (around rebalances) leave a hole nothing can
        # commit past; sending the partition back to its committed offset processes them
        # (and the ones after again: at least once). See pipeline/stream/positions.py.
        consumer: Any = app.consumer  # Faust's internals: its commit bookkeeping
        if app.rebalancing or not consumer.flow_active:
            watch.reset()
            return
        try:  # copies: acks may land from another thread while we look
            committed = dict(consumer._committed_offset)
            acked = {tp: list(offsets) for tp, offsets in list(consumer._acked.items())}
        except RuntimeError:  # changed size while copied: look again next round
            return
        found = holes(committed, acked)
        for tp in watch.due(found):
            log.warning(
                "%s: records after committed offset %d were skipped; rewinding", tp, found[tp]
            )
            metrics.partition_rewinds.labels(tp.topic).inc()
            await consumer.seek(tp, found[tp])

    app.timer(interval=settings.hole_check_s)(rewind_holes)
    app.agent(raw, name="stage1")(stage1)
    app.agent(identities, name="devices_per_person")(count_devices)
    app.timer(interval=settings.session_timer_s)(close_idle_sessions)
    if settings.worker_stage2:
        _add_stage2(app, settings, send, definitions, enriched)
    return app


def _forget(table: Any, keys: list[str]) -> None:
    """Delete these keys from a table (a tombstone in its changelog each); absent ones are
    skipped, so a replayed forget record changes nothing."""
    for key in keys:
        if key in table:
            del table[key]


def _decode_object(value: bytes | None) -> dict[str, Any] | None:
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _add_stage2(
    app: faust.App, settings: Settings, send: Sender, definitions: Definitions, enriched: Any
) -> None:
    """Stage 2: ``enriched`` (keyed by person_id) → profiles → ``profiles``; and through
    ``account_updates`` (keyed by account_id) → accounts → ``accounts``. Cohorts of persons
    are evaluated next to the profile fold, cohorts of accounts next to the account fold
    (fed by ``cohort_fact`` updates), both to ``cohort_changes``.

    A replayed record is recognised by the pure fold, which then changes nothing; its
    outputs are sent again all the same, because the crash may have come between saving the
    state and sending them. Every output is idempotent downstream (latest version wins).
    """
    profiles_topic = _raw_topic(app, settings.topic("profiles"), settings.partitions)
    updates_topic = _raw_topic(app, settings.topic("account_updates"), settings.partitions)
    accounts_topic = _raw_topic(app, settings.topic("accounts"), settings.partitions)
    profiles = _table(app, "profiles", settings.partitions)  # co-partitioned with enriched
    accounts = _table(app, "accounts", settings.partitions)  # ... with account_updates
    changes_topic = _raw_topic(app, settings.topic("cohort_changes"), settings.partitions)
    person_plan = cohort_plan(definitions, "person")
    account_plan = cohort_plan(definitions, "account")
    person_cohorts = CohortStage(
        _table(app, "person_cohorts", settings.partitions), person_plan, changes_topic, send
    )
    account_cohorts = CohortStage(
        _table(app, "account_cohorts", settings.partitions), account_plan, changes_topic, send
    )

    async def send_profile(
        person: str, state: ProfileState, record: dict[str, Any]
    ) -> dict[str, Any]:
        # ``record``: the event just folded, or {} for a seed (no event: no cohort facts).
        profile = profile_record(state, definitions)
        await send(profiles_topic, person.encode(), orjson.dumps(profile))
        updates = account_updates(record, profile)
        if record:
            updates += account_facts(record, profile, account_plan)
        for update in updates:
            await send(updates_topic, update["account_id"].encode(), orjson.dumps(update))
        return profile

    async def stage2_profiles(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if is_seed(event.value):
                await apply_seed(event.value)
                continue
            if (forgotten := forget_keys(event.value)) is not None:
                _forget(profiles, forgotten)
                person_cohorts.forget(forgotten)
                continue
            record = _decode_object(event.value)
            if record is None or not record.get("person_id") or not record.get("event_id"):
                continue  # stage 1 wrote it; the sink dead-letters what it cannot store
            person = str(record["person_id"])
            saved = profiles.get(person)
            try:
                state, changed = fold_profile(
                    ProfileState.from_json(saved) if saved else None, record, definitions
                )
            except ValueError:
                continue  # no valid timestamp: stage 1 never emits one
            if changed:
                profiles[person] = state.to_json()
            profile = await send_profile(person, state, record)
            await person_cohorts.on_input(person, record, profile, str(record["event_id"]))

    async def apply_seed(value: bytes | None) -> None:
        seed = (_decode_object(value) or {}).get("seed")
        if not isinstance(seed, dict) or not seed.get("subject") or not seed.get("seed_id"):
            return
        person = str(seed["subject"])
        saved = profiles.get(person)
        state, outcome = apply_profile_seed(
            ProfileState.from_json(saved) if saved else None, seed, definitions
        )
        if outcome.stale:
            log.warning(
                "seed for %s: stale parts %s (worker runs other definitions)", person, outcome.stale
            )
        if not outcome.exact:
            log.warning(
                "seed for %s: inexact: it folded %s lake events, %d re-folded from the tail,"
                " but the profile folded %d",
                person,
                seed.get("events"),
                outcome.refolded,
                state.version,
            )
        if outcome.applied:
            profiles[person] = state.to_json()
            profile = await send_profile(person, state, {})
            if COHORT_PART in outcome.applied:
                body = seed["parts"][COHORT_PART]
                if not await person_cohorts.apply_seed(person, body, state.tail, profile):
                    log.warning("seed for %s: stale cohorts (worker runs other ones)", person)

    async def stage2_accounts(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            if (forgotten := forget_keys(event.value)) is not None:
                if event.key:  # the account's id; a keyless one names no account
                    await forget_account_members(event.key.decode(errors="replace"), forgotten)
                continue
            update = _decode_object(event.value)
            if update is None or not update.get("account_id"):
                continue
            key = str(update["account_id"])
            if update.get("kind") == "cohort_fact":
                try:
                    await account_cohorts.on_input(key, update, None, str(update["event_id"]))
                except (KeyError, ValueError):
                    continue  # the person stage wrote it; a bad one is skipped, not fatal
                continue
            saved = accounts.get(key)
            state, changed = fold_account(AccountState.from_json(saved) if saved else None, update)
            if changed:
                accounts[key] = state.to_json()
            record = account_record(state)
            await send(accounts_topic, key.encode(), orjson.dumps(record))
            await account_cohorts.on_input(key, None, record, update.get("event_id"))

    async def forget_account_members(key: str, persons: list[str]) -> None:
        # `autocap forget`: the account, keyed by the record's key, without these members.
        saved = accounts.get(key)
        if not saved:
            return
        state, changed = forget_members(AccountState.from_json(saved), persons)
        if changed:
            accounts[key] = state.to_json()
            record = account_record(state)
            await send(accounts_topic, key.encode(), orjson.dumps(record))
            await account_cohorts.on_input(key, None, record, None)

    async def cohort_timer() -> None:
        await person_cohorts.tick()
        await account_cohorts.tick()

    app.agent(enriched, name="stage2_profiles")(stage2_profiles)
    app.agent(updates_topic, name="stage2_accounts")(stage2_accounts)
    app.timer(interval=settings.cohort_timer_s)(cohort_timer)
