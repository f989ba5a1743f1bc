-- stream_ids: the ids the stream keyed a subject by: itself, and for a person every id
-- merged into it through the identity ledger.
SELECT $subject AS id
UNION
SELECT origin FROM person_merges WHERE person = $subject
