"""PostgreSQL roles as the :class:`~deployops.ports.CredentialTarget` of the database password
(SEC-3): ``ALTER ROLE ... PASSWORD`` on the database the application uses (local PostgreSQL or
RDS alike), and a login check with a candidate password.

The password goes to the server as a SCRAM-SHA-256 verifier computed by libpq on this side
(``PQencryptPasswordConn``), so the clear value is never in a statement, a server log line or
``pg_stat_activity``. Error messages name the role, never the password or the DSN.
"""

from __future__ import annotations

from typing import ClassVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from deployops.errors import DriverError
from deployops.secret import Secret

__all__ = ["PostgresRoles"]


class PostgresRoles:
    name: ClassVar[str] = "postgres-roles"

    def __init__(self, *, admin_dsn: str, app_dsn: str = "", timeout_s: float = 5.0) -> None:
        # libpq DSNs; the admin one needs the right to ALTER ROLE (no password in the file:
        # trust/peer auth or PGPASSFILE). Never put either in a message.
        self._admin = admin_dsn.replace("postgresql+psycopg://", "postgresql://")
        self._app = (app_dsn or admin_dsn).replace("postgresql+psycopg://", "postgresql://")
        self._timeout = max(1, int(timeout_s))

    def set_password(self, user: str, password: Secret) -> None:
        try:
            with psycopg.connect(self._admin, connect_timeout=self._timeout) as conn:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
                if exists.fetchone() is None:
                    raise DriverError(
                        self.name,
                        "set password",
                        f"role {user!r} does not exist",
                        hint=f"create both alternating roles with the same grants, e.g. "
                        f"CREATE ROLE {user} LOGIN IN ROLE app (docs/runbooks/secret-rotation.md)",
                    )
                verifier = conn.pgconn.encrypt_password(
                    password.reveal().encode(), user.encode(), b"scram-sha-256"
                ).decode()
                conn.execute(
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                        sql.Identifier(user), sql.Literal(verifier)
                    )
                )
        except psycopg.Error as exc:
            raise DriverError(
                self.name,
                "set password",
                f"could not change the password of role {user!r} ({type(exc).__name__})",
                retryable=isinstance(exc, psycopg.OperationalError),
                hint="check that the database is up and the admin DSN may ALTER ROLE",
            ) from None

    def check_login(self, user: str, password: Secret) -> None:
        params = conninfo_to_dict(self._app)
        params.update(user=user, password=password.reveal())
        try:
            with psycopg.connect(
                make_conninfo("", **params), connect_timeout=self._timeout
            ) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            raise DriverError(
                self.name,
                "log in",
                f"role {user!r} cannot log in with the new password ({type(exc).__name__})",
                hint="check pg_hba.conf allows the role, and the role's grants",
            ) from None
