"""Seeds: a property added after history exists, computed over the lake's part of it and
applied in the stream, equals the fold that always ran it, whatever the sink lag (within the
tail) and with live events before and after the seed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.definitions import Definitions, load_definitions
from pipeline.profiles import TAIL, ProfileState, fold_custom, fold_profile, profile_record
from pipeline.seeds import PROPERTY_PART, apply_profile_seed, fingerprint, is_seed, seed_record
from tests.unit.test_profiles import DEFINITIONS_YAML, event, event_logs

OLD_YAML = DEFINITIONS_YAML.split("  - name: pricing_views")[0]  # first_plan, last_plan


@pytest.fixture(scope="module")
def old_and_new(tmp_path_factory: pytest.TempPathFactory) -> tuple[Definitions, Definitions]:
    folder = tmp_path_factory.mktemp("defs")
    (folder / "old.yaml").write_text(OLD_YAML)
    (folder / "new.yaml").write_text(DEFINITIONS_YAML)
    return load_definitions(folder / "old.yaml"), load_definitions(folder / "new.yaml")


def fold(state: ProfileState | None, events: list[dict[str, Any]], d: Definitions) -> Any:
    for e in events:
        state, _ = fold_profile(state, e, d)
    return state


def seed_from(lake: list[dict[str, Any]], d: Definitions, seed_id: str = "s1") -> dict[str, Any]:
    """What ``autocap backfill-state`` sends for the lake's events of person u:1."""
    last_seen = max(e["timestamp"] for e in lake) if lake else ""
    parts = {}
    for definition in d.properties:
        if definition.kind == "case":
            continue
        saved = None
        for e in lake:
            saved = fold_custom(definition, saved, e, last_seen)
        parts[PROPERTY_PART + definition.name] = {
            "fingerprint": fingerprint(definition),
            "state": saved,
        }
    value = seed_record("u:1", seed_id, parts, len(lake), [e["event_id"] for e in lake])
    assert is_seed(value)
    seed: dict[str, Any] = orjson.loads(value)["seed"]
    return seed


def properties(state: ProfileState, d: Definitions) -> dict[str, Any]:
    values = dict(profile_record(state, d)["properties"])
    values["lead_score"] = round(values["lead_score"], 4)
    return values


@settings(max_examples=120, deadline=None)
@given(log=event_logs(), data=st.data())
def test_a_seeded_property_equals_the_fold_that_always_ran_it(
    old_and_new: tuple[Definitions, Definitions], log: list[dict[str, Any]], data: st.DataObject
) -> None:
    old, new = old_and_new
    # The worker ran the old definitions, then restarted with the new ones; the lake holds
    # all but the sink's lag when the backfill reads it; live events follow the seed.
    restart = data.draw(st.integers(0, len(log)), label="restart")
    read = data.draw(st.integers(restart, len(log)), label="backfill reads")
    lag = data.draw(st.integers(0, min(read, TAIL)), label="sink lag")
    stream = fold(None, log[:restart], old)
    stream = fold(stream, log[restart:read], new)
    seed = seed_from(log[: read - lag], new)
    stream, outcome = apply_profile_seed(stream, seed, new)
    assert outcome.exact and outcome.refolded == lag
    stream = fold(stream, log[read:], new)
    always = fold(None, log, new)
    if always is None:
        return
    got, want = properties(stream, new), properties(always, new)
    assert math.isclose(got.pop("lead_score"), want.pop("lead_score"), abs_tol=1e-4)
    assert got == want
    # Replayed after more events (a crash): the seed id is remembered, nothing moves.
    again, replay = apply_profile_seed(stream, seed, new)
    assert replay.replayed and not replay.applied and again.custom == stream.custom


def test_a_lag_beyond_the_tail_is_reported_inexact(
    old_and_new: tuple[Definitions, Definitions],
) -> None:
    _, new = old_and_new
    log = [event(n, n, event="Signed Up") for n in range(TAIL + 5)]
    stream = fold(None, log, new)
    _, outcome = apply_profile_seed(stream, seed_from(log[:2], new), new)
    assert outcome.applied and not outcome.exact
    _, outcome = apply_profile_seed(stream, seed_from(log[:5], new), new)
    assert outcome.exact and outcome.refolded == TAIL


def test_a_seed_for_another_definition_is_stale(
    old_and_new: tuple[Definitions, Definitions], tmp_path: Path
) -> None:
    old, new = old_and_new
    log = [event(n, n * 60, event="Signed Up", properties={"plan": "pro"}) for n in range(3)]
    seed = seed_from(log, new)
    stream = fold(None, log, old)  # the worker still runs the old definitions
    state, outcome = apply_profile_seed(stream, seed, old)
    assert "properties.lead_score" in outcome.stale and state.custom == stream.custom
    (tmp_path / "changed.yaml").write_text(
        DEFINITIONS_YAML.replace("half_life: 7d", "half_life: 3d")
    )
    changed = load_definitions(tmp_path / "changed.yaml")
    state, outcome = apply_profile_seed(fold(None, log, changed), seed, changed)
    assert outcome.stale == ["properties.lead_score"]
    assert "properties.pricing_views" in outcome.applied


def test_a_seed_raises_the_version_and_survives_the_changelog(
    old_and_new: tuple[Definitions, Definitions],
) -> None:
    old, new = old_and_new
    log = [event(n, n * 60, event="Signed Up") for n in range(4)]
    stream = fold(None, log, old)
    before = profile_record(stream, new)["version"]
    state, _ = apply_profile_seed(stream, seed_from(log, new), new)
    record = profile_record(state, new)
    assert record["version"] == before + 1 and record["event_count"] == 4
    assert record["properties"]["lead_score"] > 0
    assert ProfileState.from_json(orjson.loads(orjson.dumps(state.to_json()))) == state
    assert not is_seed(orjson.dumps(log[0]))
