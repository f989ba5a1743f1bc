"""autocap: Heap-style product analytics on Kafka, Faust and DuckDB."""

__version__ = "0.1.0"
