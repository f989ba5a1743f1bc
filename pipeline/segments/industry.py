"""A small shipped mapping from SIC and NAICS codes to top-level sectors.

SIC (US, 1987): the ten divisions, by two-digit major group. NAICS (2022): the twenty
sectors, by the code's first two digits. Both map onto one vocabulary so accounts coded
either way land in the same sector. Finer codes are not mapped (the sector is the first
question an analyst asks; a finer one is a trait).
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["NAICS_SECTORS", "SIC_DIVISIONS", "industry_codes"]

#: (first two-digit major group, last, sector)
SIC_DIVISIONS = (
    (1, 9, "Agriculture"),
    (10, 14, "Mining"),
    (15, 17, "Construction"),
    (20, 39, "Manufacturing"),
    (40, 49, "Transportation and Utilities"),
    (50, 51, "Wholesale"),
    (52, 59, "Retail"),
    (60, 67, "Finance"),
    (70, 89, "Services"),
    (91, 99, "Public Administration"),
)

#: NAICS two-digit sector code -> sector
NAICS_SECTORS = {
    "11": "Agriculture",
    "21": "Mining",
    "22": "Transportation and Utilities",
    "23": "Construction",
    "31": "Manufacturing",
    "32": "Manufacturing",
    "33": "Manufacturing",
    "42": "Wholesale",
    "44": "Retail",
    "45": "Retail",
    "48": "Transportation and Utilities",
    "49": "Transportation and Utilities",
    "51": "Information",
    "52": "Finance",
    "53": "Real Estate",
    "54": "Professional Services",
    "55": "Management of Companies",
    "56": "Administrative Services",
    "61": "Education",
    "62": "Health Care",
    "71": "Arts and Entertainment",
    "72": "Accommodation and Food",
    "81": "Services",
    "92": "Public Administration",
}


def industry_codes() -> pa.Table:
    """``(scheme, prefix, sector)`` rows: ``sic`` by two-digit major group, ``naics`` by
    two-digit sector."""
    rows = [
        ("sic", f"{group:02d}", sector)
        for first, last, sector in SIC_DIVISIONS
        for group in range(first, last + 1)
    ]
    rows += [("naics", code, sector) for code, sector in NAICS_SECTORS.items()]
    scheme, prefix, sector = zip(*rows, strict=True)
    return pa.table({"scheme": scheme, "prefix": prefix, "sector": sector})
