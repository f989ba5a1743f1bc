-- The shipped SIC/NAICS sector mapping (pipeline/segments/industry.py), from an Arrow table.
CREATE OR REPLACE TEMP TABLE segment_industry_codes AS SELECT * FROM codes
