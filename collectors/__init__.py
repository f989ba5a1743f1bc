"""Collectors: where events enter autocap (the HTTP API; the JS snippet lives in js/)."""
