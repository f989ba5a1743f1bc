-- profiles: the stream's latest profile per profile key, as verify compares them.
SELECT * FROM lake_profiles
