"""Batch recomputation over the warehouse: `autocap verify` (and, later, backfills)."""
