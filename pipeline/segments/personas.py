"""``autocap personas``: k-means over people (or accounts), k chosen by silhouette.

Features, per subject: how often it did each of the 12 most common events (raw and
defined), ``log1p``-scaled; numeric profile columns (people: event and session counts;
accounts: employees and revenue, ``log1p``, members, active users, roles engaged, lead
score); and one-hot profile values (people: device, country, email kind, browser, os;
accounts: sector, country, size band). Numbers are standardized (z-score) so none
dominates by its unit; see ``_standardize`` for profile values. k-means++ with ``n_init``
restarts from a seeded generator: the same seed gives the same personas. For each k in
the range the mean silhouette (on a seeded sample of at most 2,000 subjects) is computed
and the best k kept. A persona is described
by its size and the features most over-represented in it (highest mean z-score), shown in
their own units (times per subject, or share with the value) against everyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import SegmentError
from pipeline.segments.engine import SegmentEngine
from pipeline.sqlfiles import render_sql

__all__ = ["Persona", "PersonasResult", "find_personas", "kmeans", "silhouette"]

Matrix = npt.NDArray[np.float64]

_TOP_EVENTS = 12
_SILHOUETTE_SAMPLE = 2000
_NUMERIC = {
    "person": ("event_count", "session_count"),
    "account": (
        "employees",
        "annual_revenue",
        "members",
        "active_users_30d",
        "roles_engaged",
        "lead_score",
    ),
}
_LOG_SCALED = {"event_count", "session_count", "employees", "annual_revenue"}
_CATEGORICAL = {
    "person": ("device", "country", "email_kind", "browser", "os"),
    "account": ("sector", "country", "size_band"),
}


@dataclass
class Persona:
    """One cluster: its members and what sets it apart."""

    index: int
    members: list[str]
    share: float
    traits: list[dict[str, Any]] = field(default_factory=list)  # feature, value, overall, lift

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        return {
            "persona": self.index,
            "size": len(self.members),
            "share": self.share,
            "distinguished_by": self.traits,
            "members": self.members,
        }


@dataclass
class PersonasResult:
    """The chosen k, the silhouette of every k tried, and the personas."""

    of: str
    k: int
    silhouettes: dict[int, float]
    personas: list[Persona]
    seed: int

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        return {
            "of": self.of,
            "k": self.k,
            "seed": self.seed,
            "silhouettes": {str(k): v for k, v in self.silhouettes.items()},
            "personas": [p.to_json() for p in self.personas],
        }


def kmeans(x: Matrix, k: int, rng: np.random.Generator, n_init: int = 4) -> npt.NDArray[Any]:
    """Labels of the best of ``n_init`` k-means++ runs (lowest inertia)."""
    best: tuple[float, npt.NDArray[Any]] | None = None
    for _ in range(n_init):
        centres = x[[int(rng.integers(len(x)))]]
        while len(centres) < k:  # k-means++: far points are likelier next centres
            d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1).min(1)
            total = d2.sum()
            pick = (
                int(rng.integers(len(x))) if total == 0 else int(rng.choice(len(x), p=d2 / total))
            )
            centres = np.vstack([centres, x[pick]])
        labels = np.zeros(len(x), dtype=int)
        for step in range(100):
            d2 = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
            new = d2.argmin(1)
            if step and (new == labels).all():
                break
            labels = new
            for c in range(k):
                if (labels == c).any():
                    centres[c] = x[labels == c].mean(0)
        inertia = float(((x - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels.copy())
    assert best is not None
    return best[1]


def silhouette(x: Matrix, labels: npt.NDArray[Any]) -> float:
    """Mean silhouette coefficient (Euclidean); 0 when there is a single cluster."""
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return 0.0
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    scores = []
    for i in range(len(x)):
        own = labels == labels[i]
        a = d[i, own].sum() / max(own.sum() - 1, 1)
        b = min(d[i, labels == c].mean() for c in clusters if c != labels[i])
        scores.append(0.0 if own.sum() == 1 else (b - a) / max(a, b, 1e-12))
    return float(np.mean(scores))


def _features(engine: SegmentEngine, of: str) -> tuple[list[str], list[str], Matrix]:
    ids = engine.base_ids(of)
    if not ids:
        raise SegmentError(f"no {of}s in the warehouse to find personas among")
    index = {s: i for i, s in enumerate(ids)}
    subject = "person_id" if of == "person" else "account_id"
    sql = render_sql("personas/event_counts", identifiers={"subject": subject})
    counts = engine.con.execute(sql, {"top": _TOP_EVENTS}).fetchall()
    events = sorted({name for _, name, _ in counts})
    names = [f"event:{e}" for e in events]
    columns: list[list[float]] = [[0.0] * len(ids) for _ in events]
    for sid, name, times in counts:
        if sid in index:
            columns[events.index(name)][index[sid]] = float(times)
    rows = engine.rows(of, ids)
    for col in _NUMERIC[of]:
        names.append(col)
        columns.append([float(r.get(col) or 0) for r in rows])
    for col in _CATEGORICAL[of]:
        for value in sorted({str(r[col]) for r in rows if r.get(col) is not None}):
            names.append(f"{col}={value}")
            columns.append([1.0 if str(r.get(col)) == value else 0.0 for r in rows])
    return ids, names, np.array(columns, dtype=np.float64).T.reshape(len(ids), len(names))


def _standardize(raw: Matrix, names: list[str]) -> Matrix:
    """Numbers as z-scores; a profile value as 0 or 1/sqrt(2) (changing it moves a subject
    as far as one standard deviation of a number), values held by under 5% left out, so a
    rare country cannot make a persona of its own."""
    x = raw.copy()
    for j, name in enumerate(names):
        if name.startswith("event:") or name in _LOG_SCALED:
            x[:, j] = np.log1p(np.maximum(x[:, j], 0))
    dummy = np.array(["=" in n for n in names], dtype=bool)
    std = x.std(0)
    numeric = ~dummy & (std > 0)
    common = dummy & (x.mean(0) >= 0.05)
    z = (x[:, numeric] - x[:, numeric].mean(0)) / std[numeric]
    out: Matrix = np.hstack([z, x[:, common] * np.sqrt(0.5)])
    return out


def find_personas(
    engine: SegmentEngine, of: str, k_range: range, seed: int = 0, top: int = 4
) -> PersonasResult:
    """Cluster the base of ``of`` for each k in ``k_range``; keep the best silhouette."""
    ids, names, raw = _features(engine, of)
    if len(ids) <= max(k_range):
        raise SegmentError(f"--k up to {max(k_range)} needs more than that many {of}s")
    x = _standardize(raw, names)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.permutation(len(ids))[:_SILHOUETTE_SAMPLE])
    tried: dict[int, tuple[float, npt.NDArray[Any]]] = {}
    for k in k_range:
        labels = kmeans(x, k, np.random.default_rng(seed + k))
        tried[k] = (silhouette(x[sample], labels[sample]), labels)
    best_k = max(tried, key=lambda k: (round(tried[k][0], 9), -k))
    labels = tried[best_k][1]
    # Personas numbered by size, largest first, so the output does not depend on label ids.
    order = sorted(range(best_k), key=lambda c: (-(labels == c).sum(), c))
    overall = raw.mean(0)
    spread = raw.std(0)
    personas = []
    for number, c in enumerate(order, start=1):
        inside = labels == c
        mean = raw[inside].mean(0)
        z = np.where(spread > 0, (mean - overall) / np.where(spread > 0, spread, 1), 0)
        traits = [
            {
                "feature": names[j],
                "value": round(float(mean[j]), 3),
                "overall": round(float(overall[j]), 3),
                "lift": round(float(mean[j] / overall[j]), 2) if overall[j] else None,
            }
            for j in np.argsort(-z)[:top]
            if z[j] > 0
        ]
        members = sorted(ids[i] for i in np.flatnonzero(inside))
        personas.append(Persona(number, members, len(members) / len(ids), traits))
    silhouettes = {k: round(v[0], 4) for k, v in tried.items()}
    return PersonasResult(of, best_k, silhouettes, personas, seed)
