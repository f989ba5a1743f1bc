"""``autocap report``: a self-contained HTML report of the warehouse (charts + their SQL)."""
