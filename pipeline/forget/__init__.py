"""Data rights: ``autocap forget ID`` removes a person everywhere autocap keeps them.

Modules: ``forgetlist`` (what collectors drop; light, imported by the collector), ``keys``
(a person's ids), ``purge`` (Parquet rewrites), ``tombstones`` (changelogs), ``workers``
(forget records for running stream workers; their format: ``record``), ``command``.
"""
