"""A PostgreSQL 15 that checks passwords: tests/pg.py's cluster with ``pg_hba.conf`` rewritten
so the ``postgres`` admin connects by trust and every other role needs SCRAM-SHA-256."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from pg import PgCluster

__all__ = ["password_cluster"]

HBA = """\
local all all trust
host all {admin} 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


@contextmanager
def password_cluster() -> Iterator[tuple[PgCluster, str]]:
    """A cluster and the admin libpq DSN of database ``app`` with roles app_a / app_b (both in
    the group role ``app`` that holds the grants, as alternating users need)."""
    cluster = PgCluster.start()
    try:
        (cluster.data / "pg_hba.conf").write_text(HBA.format(admin=cluster.user))
        cluster.create_database("app")
        admin = f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/app"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("CREATE ROLE app NOLOGIN")
            for user in ("app_a", "app_b"):
                conn.execute(f"CREATE ROLE {user} LOGIN IN ROLE app")
            conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
            conn.execute("GRANT SELECT, INSERT ON items TO app")
            conn.execute("GRANT USAGE ON SEQUENCE items_id_seq TO app")
        yield cluster, admin
    finally:
        cluster.stop()
