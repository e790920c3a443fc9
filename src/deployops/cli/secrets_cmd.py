"""``deployops secrets status|rotate|resume|get|set|keygen``: managed secrets (SEC-1..SEC-3)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployops.cli._common import fmt_time, get_app

if TYPE_CHECKING:
    from deployops.cli.app import App
    from deployops.domain.secrets import SecretStatus

group = typer.Typer(
    help=(
        "Managed secrets: where they are stored, when they rotate, and rotating them. Values "
        "are never shown, except by `secrets get` for an admin (audited).\n\n"
        "Examples:\n\n"
        "  deployops secrets status -e production\n\n"
        "  deployops secrets rotate database-password -e production\n\n"
        "  deployops secrets rotate --due -e production -o json\n\n"
        "  deployops secrets keygen -e staging"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="secrets")


def _statuses(app: App, environment: str) -> list[SecretStatus]:
    from deployops.clock import SystemClock
    from deployops.domain.secrets import secret_status
    from deployops.drivers.secrets import build_secret_store
    from deployops.errors import DeployopsError
    from deployops.ports import RotatingSecretStore

    clock = SystemClock()
    store = build_secret_store(app.project, environment, clock=clock).inner
    now = clock.now()
    rows = []
    for secret in app.project.secrets.managed_secrets():
        done = [
            r
            for r in app.store.rotations(environment=environment, secret=secret.name)
            if r.status == "completed"
        ]
        last = done[0].finished_at if done else None
        info = None
        problem = ""
        if isinstance(store, RotatingSecretStore):
            try:
                info = store.describe(secret.name)
            except DeployopsError as exc:
                problem = exc.message
        else:
            problem = f"{store.name} cannot rotate"
        rows.append(
            secret_status(
                secret, store=store.name, info=info, last_rotated=last, now=now, problem=problem
            )
        )
    return rows


def _row_json(r: SecretStatus) -> dict[str, Any]:
    return {
        "name": r.name,
        "kind": r.kind.value,
        "store": r.store,
        "version": r.version,
        "pending": r.pending,
        "last_rotated": r.last_rotated.isoformat() if r.last_rotated else None,
        "next_due": r.next_due.isoformat() if r.next_due else None,
        "due": r.due,
        "problem": r.problem,
    }


@group.command("status")
def status(ctx: typer.Context) -> None:
    """Name, store, current version, last rotated, next due (never a value)."""
    app = get_app(ctx)
    env = app.environment_name()
    rows = _statuses(app, env)
    running = app.store.list_operations(
        environment=env, kinds=("rotate",), status=["running"], limit=100
    )
    if app.json:
        app.emit(
            {
                "environment": env,
                "secrets": [_row_json(r) for r in rows],
                "running": [
                    {"id": r.id, "secret": r.target.removeprefix("secret:")} for r in running
                ],
            }
        )
        return
    for r in rows:
        due = "DUE" if r.due else "ok"
        version = (r.version or "-")[:8]
        line = (
            f"{r.name:<18} {r.kind.value:<18} {r.store:<20} v{version:<8} "
            f"last {fmt_time(r.last_rotated)}  next {fmt_time(r.next_due)}  {due}"
        )
        app.console.print(line + (f"  ({r.problem})" if r.problem else ""))
    for rot in running:
        app.console.print(
            f"rotation {rot.id} of {rot.target.removeprefix('secret:')} is unfinished: "
            f"`deployops resume {rot.id}`"
        )


def _rotator(app: App, env: str) -> Any:
    from deployops.clock import SystemClock
    from deployops.drivers import build_platform
    from deployops.errors import DeployopsError
    from deployops.wiring import build_rotator, whoami

    clock = SystemClock()
    platform = None
    try:
        platform = build_platform(app.project, env, clock=clock, store=app.store)
        platform.compute.list_services()
    except DeployopsError as exc:
        app.info(
            f"warning: the platform of {env} is not reachable ({exc.message.splitlines()[0]}); "
            "running replicas will not be restarted onto the new value"
        )
        platform = None
    return build_rotator(
        app.project,
        env,
        store=app.store,
        clock=clock,
        owner=whoami(),
        compute=platform.compute if platform is not None else None,
        progress=app.info,
    )


def _actor(app: App) -> tuple[str, str]:
    who = app.identity
    if who is None:
        from deployops.config.access import resolve_identity

        who = resolve_identity(app.project.root)
    return who.name, who.source


@group.command("rotate")
def rotate(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A managed secret, e.g. jwt-secret.")] = None,
    due: Annotated[bool, typer.Option("--due", help="Rotate every secret that is due.")] = False,
) -> None:
    """Rotate a secret now (create pending, set on target, test, promote, move replicas)."""
    from deployops.errors import ConfigError, DeployopsError

    app = get_app(ctx)
    env = app.environment_name()
    managed = {s.name: s for s in app.project.secrets.managed_secrets()}
    if (name is None) == (not due):
        raise ConfigError(
            "name one secret or pass --due",
            path="secrets rotate",
            hint="deployops secrets rotate database-password, or deployops secrets rotate --due",
        )
    if name is not None and name not in managed:
        raise ConfigError(
            f"unknown secret {name!r}; managed: {', '.join(managed)}",
            path="secrets.managed",
            hint="`deployops secrets status` lists them; add it under secrets.managed in "
            "deployops.yaml",
        )
    names = [name] if name else [r.name for r in _statuses(app, env) if r.due and not r.problem]
    rotator = _rotator(app, env)
    actor, source = _actor(app)
    results: list[dict[str, Any]] = []
    failure: DeployopsError | None = None
    for n in names:
        try:
            rec = rotator.rotate(managed[n], actor=actor, source=source)
            results.append({"secret": n, "rotation": rec.id, "status": rec.status})
            app.info(f"{n}: rotated ({rec.id})")
        except DeployopsError as exc:
            results.append({"secret": n, "status": "failed", "error": exc.message})
            failure = failure or exc
    if app.json:
        app.emit({"environment": env, "rotations": results})
    elif not names:
        app.console.print("nothing is due")
    else:
        for r in results:
            app.console.print(f"{r['secret']}: {r['status']}")
    if failure is not None:
        if app.json:  # the results above are the one JSON document
            raise typer.Exit(failure.exit_code)
        raise failure


@group.command("resume")
def resume(
    ctx: typer.Context,
    rotation_id: Annotated[str, typer.Argument(help="The id `secrets status` shows.")],
) -> None:
    """Finish (or put back) a rotation that was interrupted (as `deployops resume ID`)."""
    app = get_app(ctx)
    resume_rotation(app, rotation_id, app.environment_name())


def resume_rotation(app: App, rotation_id: str, env: str) -> None:
    """Resume rotation ``rotation_id`` of ``env`` (admin only) and print its outcome."""
    from deployops.domain.access import Role
    from deployops.errors import AccessDeniedError
    from deployops.wiring import owner_alive

    who = app.identity
    if who is not None and not who.role.allows(Role.ADMIN):
        raise AccessDeniedError(
            who=who.name, role=who.role.value, needed=Role.ADMIN.value, action="resuming a rotation"
        )
    actor, _ = _actor(app)
    rec = _rotator(app, env).resume(rotation_id, actor=actor, owner_alive=owner_alive)
    if app.json:
        app.emit({"rotation": rec.id, "secret": rec.secret, "status": rec.status})
    else:
        app.console.print(f"{rec.id} ({rec.secret}): {rec.status}")


@group.command("get")
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A secret name, e.g. jwt-secret.")],
) -> None:
    """Print a secret's current value (admin only; every read is audited)."""
    from deployops.clock import SystemClock
    from deployops.drivers.secrets import build_secret_store
    from deployops.store import AuditRecord

    app = get_app(ctx)
    env = app.environment_name()
    clock = SystemClock()
    value = build_secret_store(app.project, env, clock=clock).get(name)
    actor, source = _actor(app)
    app.store.audit(
        AuditRecord(
            ts=clock.now(),
            actor=actor,
            action="secret.read",
            target=f"{env}/{name}",
            source=source,
        )
    )
    if app.json:
        app.emit({"name": name, "value": value.reveal()})
    else:
        sys.stdout.write(value.reveal() + "\n")


@group.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A secret name, e.g. api-keys.")],
) -> None:
    """Store a value read from stdin as the secret's new current version (never from argv)."""
    import uuid

    from deployops.clock import SystemClock
    from deployops.drivers.secrets import build_secret_store, rotating_store
    from deployops.errors import ConfigError
    from deployops.secret import Secret
    from deployops.store import AuditRecord

    app = get_app(ctx)
    env = app.environment_name()
    text = sys.stdin.read().rstrip("\n")
    if not text:
        raise ConfigError(
            "no value on stdin",
            path="secrets set",
            hint=f'printf %s "$VALUE" | deployops secrets set {name} -e {env}',
        )
    clock = SystemClock()
    store = rotating_store(build_secret_store(app.project, env, clock=clock), environment=env)
    version = str(uuid.uuid4())
    store.put_pending(name, Secret(text), version_id=version)
    store.promote(name, version)
    actor, source = _actor(app)
    app.store.audit(
        AuditRecord(
            ts=clock.now(),
            actor=actor,
            action="secret.set",
            target=f"{env}/{name}",
            source=source,
            detail={"version": version},
        )
    )
    if app.json:
        app.emit({"name": name, "version": version})
    else:
        app.console.print(f"{name}: version {version} is current")


@group.command("keygen")
def keygen(
    ctx: typer.Context,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Where (default: .deployops/secrets/ENV.key)."),
    ] = None,
) -> None:
    """Create the key of the local encrypted secret store (mode 0600; never overwritten)."""
    from deployops.drivers.local.encrypted import write_key_file
    from deployops.drivers.secrets import key_file_for
    from deployops.errors import ConfigError

    app = get_app(ctx)
    path = key_file or key_file_for(app.project.root, app.environment_name())
    if path.exists():
        raise ConfigError(
            f"{path} exists; a key is never overwritten (its secrets would be lost)",
            path="--key-file",
            hint="pass another --key-file, or keep using the existing key",
        )
    write_key_file(path)
    if app.json:
        app.emit({"key_file": str(path)})
    else:
        app.console.print(f"wrote {path} (mode 0600); back it up apart from the store file")
