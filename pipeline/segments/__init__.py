"""Segments of people and accounts: declared in ``definitions.yaml`` (``spec``), with the
B2B and B2C toolkits' rules (``rules``, ``industry``), compiled to SQL (``compile``),
computed on the warehouse (``engine``), kept as tables with daily history
(``materialize``), checked for quality (``quality``) and clustered into personas
(``personas``)."""
