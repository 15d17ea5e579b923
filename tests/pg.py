"""A throwaway PostgreSQL cluster on loopback for tests and benchmarks: the local stack's
:class:`include.localstack.Postgres`, superuser ``postgres`` with :data:`PASSWORD`."""

from __future__ import annotations

from include.localstack import Postgres

PASSWORD = "pg-Test-Secret"


class Cluster(Postgres):
    def __init__(self):
        super().__init__("postgres", PASSWORD)
