"""The warehouse: Kafka batches → Arrow → Parquet lake → DuckDB catalog for analysts."""
