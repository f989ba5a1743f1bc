"""Backfilling history: `autocap import` reads Segment-spec files into the raw topic."""
