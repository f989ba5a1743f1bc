"""A lake table's JSON records → one Arrow table, with msgspec, in one pass.

Each table's Arrow schema (``schema.py``) gives a typed msgspec ``Struct``: a required field
for every non-nullable column, ``None`` by default for the others, ``msgspec.Raw`` for the
JSON columns (their JSON text is sliced out of the record, never built into Python objects)
and ``str`` for timestamps, which Arrow then parses for the whole column at once. msgspec
checks the types while it parses, in C, so a record that does not fit is found in the same
pass and named with its reason (``UndecodableRecord``) while the others go on: there is no
whole-batch attempt to redo record by record. (DuckDB's JSON reader, used before, decodes
about as fast alone, but went through a temporary file per batch, refused a whole batch for
one bad record, and measured slower inside the sink: docs/BENCHMARKS.md, Sink.)

JSON columns keep the producer's text (stage 1 writes compact JSON with orjson); a JSON
``null`` is SQL NULL, as before.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import pyarrow as pa

from pipeline.errors import UndecodableRecord
from pipeline.timeutil import parse_ts
from pipeline.warehouse.schema import JSON_COLUMNS

__all__ = ["Decoded", "TableDecoder"]

#: Arrow's int64 range, checked while parsing: a bigger JSON integer is refused there.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_RAW_NULL = msgspec.Raw(b"null")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_PLAIN_TYPES: dict[pa.DataType, Any] = {
    pa.string(): str,
    pa.int64(): _Int64,
    pa.float64(): float,  # msgspec takes a JSON integer here too
    pa.list_(pa.string()): list[str],
}


@dataclass(frozen=True)
class Decoded:
    """The rows that fit (``table``) and the records that did not (``rejected``)."""

    table: pa.Table
    rejected: list[UndecodableRecord] = field(default_factory=list)


class TableDecoder:
    """Decodes JSON records for one lake table; build once, use for every batch."""

    def __init__(self, table: str, schema: pa.Schema) -> None:
        self.table = table
        self.schema = schema
        struct = msgspec.defstruct(
            f"{table.title().replace('_', '')}Record",
            [_struct_field(f) for f in schema],
            kw_only=True,
            gc=False,  # flat records of str/int/float/list[str]: no cycles to collect
        )
        self._decode_one: Callable[[bytes], Any] = msgspec.json.Decoder(struct).decode
        self._row: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*schema.names)

    def decode(self, values: Sequence[bytes | None]) -> Decoded:
        """``values`` (one JSON object each) as an Arrow table with the decoder's schema;
        the records that do not fit are left out and returned as ``rejected``."""
        parsed: list[Any] = []
        kept: list[bytes] = []  # the payload of each row, to dead-letter a row Arrow refuses
        rejected: list[UndecodableRecord] = []
        decode_one = self._decode_one
        # One call per record: as fast as ``decode_lines`` over the joined batch (measured),
        # and a bad record costs nothing more than its own error.
        for value in values:
            if value is None:
                rejected.append(UndecodableRecord(self.table, "empty record", b""))
                continue
            try:
                parsed.append(decode_one(value))
            except msgspec.MsgspecError as exc:  # DecodeError (bad JSON), ValidationError
                rejected.append(UndecodableRecord(self.table, str(exc), value))
                continue
            kept.append(value)
        if not parsed:
            return Decoded(self.schema.empty_table(), rejected)
        columns = zip(*map(self._row, parsed), strict=True)
        arrays, bad = [], set[int]()
        for f, column in zip(self.schema, columns, strict=True):
            array, refused = _to_arrow(f, column)
            arrays.append(array)
            for i, reason in refused.items():
                if i not in bad:
                    bad.add(i)
                    rejected.append(UndecodableRecord(self.table, reason, kept[i]))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if bad:
            table = table.filter(pa.array([i not in bad for i in range(len(kept))]))
        return Decoded(table, rejected)


def _struct_field(f: pa.Field) -> tuple[str, Any] | tuple[str, Any, Any]:
    if f.name in JSON_COLUMNS:
        # Raw cannot be in a union with None: a missing column reads as JSON null.
        return (f.name, msgspec.Raw) if not f.nullable else (f.name, msgspec.Raw, _RAW_NULL)
    if pa.types.is_timestamp(f.type):
        kind: Any = str  # ISO 8601 text, parsed by Arrow for the whole column
    elif f.type in _PLAIN_TYPES:
        kind = _PLAIN_TYPES[f.type]
    else:
        raise TypeError(f"column {f.name}: no JSON decoding for Arrow type {f.type}")
    return (f.name, kind) if not f.nullable else (f.name, kind | None, None)


def _to_arrow(f: pa.Field, column: Sequence[Any]) -> tuple[pa.Array, dict[int, str]]:
    """One column as Arrow, and the rows it refused (index → why)."""
    if f.name in JSON_COLUMNS:
        return _json_text(f, column)
    if pa.types.is_timestamp(f.type):
        return _timestamps(f, column)
    # msgspec already checked every value's type and range: this cannot refuse one.
    return pa.array(column, f.type), {}


def _json_text(f: pa.Field, column: Sequence[msgspec.Raw]) -> tuple[pa.Array, dict[int, str]]:
    texts = [None if raw == _RAW_NULL else bytes(raw) for raw in column]
    binary = pa.array(texts, pa.binary())
    try:
        return binary.cast(pa.string()), {}  # checks UTF-8 for the whole column at once
    except pa.ArrowInvalid:
        refused = {}
        for i, text in enumerate(texts):
            try:
                if text is not None:
                    text.decode()
            except UnicodeDecodeError:
                refused[i] = f"{f.name} is not valid UTF-8"
                texts[i] = None
        return pa.array(texts, pa.binary()).cast(pa.string()), refused


def _timestamps(f: pa.Field, column: Sequence[str | None]) -> tuple[pa.Array, dict[int, str]]:
    try:
        return pa.array(column, pa.string()).cast(f.type), {}
    except pa.ArrowException:
        pass
    # Some value is not what stage 1 writes (``2026-11-23T10:00:00.123Z``): take each one
    # as the rest of autocap does (``parse_ts``: a naive time is UTC), refuse the others.
    millis: list[int | None] = []
    refused = {}
    for i, text in enumerate(column):
        moment = parse_ts(text) if text is not None else None
        if text is not None and moment is None:
            refused[i] = f"{f.name} is not an ISO 8601 timestamp: {text[:64]!r}"
        millis.append(None if moment is None else (moment - _EPOCH) // _MS)
    return pa.array(millis, pa.int64()).cast(f.type), refused
