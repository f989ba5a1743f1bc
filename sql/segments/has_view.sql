-- Whether the catalog has a table or view of this name.
SELECT count(*) > 0 FROM information_schema.tables WHERE table_name = $name
