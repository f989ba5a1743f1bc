-- A table the materializer published (defined_event_tags, funnel_<name>...): a view over
-- its live Parquet files, named after it.
CREATE OR REPLACE VIEW {{ident:name}} AS
SELECT * FROM read_parquet({{source}}, union_by_name = true)
