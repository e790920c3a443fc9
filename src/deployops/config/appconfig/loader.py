"""Resolve an environment's settings through the layers and validate them (CFG-1..5).

Layers, lowest to highest precedence:

1. schema defaults (built in, or ``config/schema.yaml``);
2. the environment file ``config/environments/<env>.yaml``;
3. ``config/.env.local`` — development only; present in another environment it is ignored with a
   warning (SEC-1);
4. the process environment, only for keys the schema opts in with ``from_env``;
5. ``secret://NAME`` references, checked (and type-checked) late through a
   :class:`~deployops.ports.SecretStore`; their values are never kept.

Every value remembers its :class:`Source` and the sources it overrode. Problems are collected,
never first-only, as :class:`~deployops.errors.ConfigIssue` (``file:path: message`` with the fix).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from deployops.config.appconfig.schema import (
    DEFAULT_SCHEMA,
    AppSchema,
    FieldSpec,
    did_you_mean,
    parse_schema,
)
from deployops.config.appconfig.sources import (
    Entry,
    Layer,
    Source,
    display_path,
    parse_dotenv,
    parse_env_yaml,
    read_text,
    yaml_issue,
)
from deployops.errors import ConfigError, ConfigIssue, DeployopsError
from deployops.ports import SecretStore
from deployops.secret import REDACTED, Secret

__all__ = [
    "SECRET_PREFIX",
    "ConfigPaths",
    "ResolvedConfig",
    "ResolvedValue",
    "default_secret_store",
    "load",
    "resolve",
]

SECRET_PREFIX = "secret://"  # noqa: S105 - a URL scheme, not a password
DEVELOPMENT = "development"
_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_+=.@-]{0,511}(#[A-Za-z0-9_]{1,64})?$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


@dataclass(frozen=True, slots=True)
class ConfigPaths:
    """Where an application's configuration lives; ``env_file`` replaces the environment's file
    (to check a candidate before it is committed)."""

    dir: Path
    env_file: Path | None = None

    @property
    def schema_file(self) -> Path:
        return self.dir / "schema.yaml"

    @property
    def env_local(self) -> Path:
        return self.dir / ".env.local"

    def environment_file(self, environment: str) -> Path:
        return self.env_file or self.dir / "environments" / f"{environment}.yaml"

    def environments(self) -> list[str]:
        folder = self.dir / "environments"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.yaml"))


@dataclass(frozen=True, slots=True)
class ResolvedValue:
    """One setting's winning value. Exactly one of ``text`` (plain), ``secret`` (a sensitive
    literal, development only) and ``reference`` (``secret://NAME``) is set."""

    key: str
    source: Source
    text: str | None = None
    secret: Secret | None = None
    reference: str | None = None
    overridden: tuple[Source, ...] = ()
    platform_managed: bool = False

    @property
    def sensitive(self) -> bool:
        return self.text is None

    def display(self) -> str:
        """The value for people: ``[REDACTED]`` for anything secret."""
        return self.text if self.text is not None else REDACTED

    def same_as(self, other: ResolvedValue) -> bool:
        return (self.text, self.secret, self.reference) == (
            other.text,
            other.secret,
            other.reference,
        )


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """An environment's resolved settings, as the deploy engine and the commands use them.

    ``environment`` has plain values only (never a secret, and not a platform-managed key left at
    its default, e.g. ``PORT``); ``secrets`` maps a key to its ``secret://NAME`` reference;
    ``literal_secrets`` holds development-only sensitive literals as :class:`Secret`.
    """

    environment_name: str
    values: Mapping[str, ResolvedValue] = field(default_factory=dict)
    warnings: tuple[ConfigIssue, ...] = ()
    files: tuple[str, ...] = ()

    @classmethod
    def empty(cls, environment: str) -> ResolvedConfig:
        return cls(environment_name=environment)

    @property
    def environment(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self.values.items():
            if value.text is None:
                continue
            if value.platform_managed and value.source.layer is Layer.DEFAULT:
                continue  # the platform sets it per replica; never force the default
            out[key] = value.text
        return out

    @property
    def secrets(self) -> dict[str, str]:
        return {k: v.reference for k, v in self.values.items() if v.reference is not None}

    @property
    def literal_secrets(self) -> dict[str, Secret]:
        return {k: v.secret for k, v in self.values.items() if v.secret is not None}

    def sources(self) -> dict[str, Source]:
        return {k: v.source for k, v in self.values.items()}


def default_secret_store(
    paths: ConfigPaths, environment: str, environ: Mapping[str, str] | None = None
) -> SecretStore:
    """Without a project's ``secrets.stores``: ``.env.local`` then ``DEPLOYOPS_SECRET_*`` in
    development, ``DEPLOYOPS_SECRET_*`` elsewhere. With a project, use
    :func:`deployops.drivers.secrets.build_secret_store`, which honours ``secrets.stores``."""
    from deployops.drivers.local.secrets import (
        ChainSecretStore,
        DotenvSecretStore,
        EnvironmentSecretStore,
    )
    from deployops.drivers.secrets import SecretResolver

    env_store = EnvironmentSecretStore(environ=environ)
    if environment == DEVELOPMENT:
        return SecretResolver(
            ChainSecretStore(
                stores=(DotenvSecretStore(path=paths.env_local, environment=environment), env_store)
            )
        )
    return SecretResolver(env_store)


def load_schema(paths: ConfigPaths) -> tuple[AppSchema, list[ConfigIssue]]:
    file = paths.schema_file
    if not file.is_file():
        return DEFAULT_SCHEMA, []
    shown = display_path(file)
    text, issues = read_text(file, shown)
    if text is None:
        return DEFAULT_SCHEMA, issues
    try:
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        return DEFAULT_SCHEMA, [yaml_issue(exc, text, shown)]
    return parse_schema(raw, shown)


# (plain text, sensitive literal, secret reference): exactly one is set.
_Value = tuple[str | None, Secret | None, str | None]


@dataclass
class _Candidate:
    source: Source
    text: str
    file: str  # for messages: file[:line]


def load(
    paths: ConfigPaths,
    environment: str,
    *,
    environ: Mapping[str, str] | None = None,
    secrets: SecretStore | None = None,
    resolve_secrets: bool = True,
) -> tuple[ResolvedConfig, list[ConfigIssue]]:
    """Resolve ``environment`` and return it with every problem found (empty when valid).

    With ``resolve_secrets`` each ``secret://`` reference is looked up in ``secrets`` (default:
    :func:`default_secret_store`) so a missing one is reported now, not mid-deploy.
    """
    env_vars = os.environ if environ is None else environ
    issues: list[ConfigIssue] = []
    warnings: list[ConfigIssue] = []
    if not _ENV_NAME.match(environment):
        raise ConfigError(
            f"{environment!r} is not an environment name",
            path="--env",
            hint="use lowercase letters, digits and '-', e.g. -e staging",
        )
    schema, schema_issues = load_schema(paths)
    if schema_issues:
        # A broken schema would turn every setting into noise; report the schema first.
        return ResolvedConfig(environment_name=environment), schema_issues

    env_file = paths.environment_file(environment)
    env_shown = display_path(env_file)
    files = [env_shown]
    if not env_file.is_file():
        known = paths.environments()
        raise ConfigError(
            f"no configuration for environment {environment!r}: {env_shown} does not exist"
            + did_you_mean(environment, known),
            path="--env",
            file=None,
            hint=(f"environments with a file: {', '.join(known)}; " if known else "")
            + f"create {env_shown} (see examples/config/environments/)",
        )
    stacks: dict[str, list[_Candidate]] = {}
    for spec in schema.fields.values():
        default = spec.default_for(environment)
        if default is not None:
            schema_label = spec.default_origin or "built-in schema"
            src = Source(Layer.DEFAULT, schema_label)
            stacks.setdefault(spec.key, []).append(_Candidate(src, default, schema_label))

    def take(entries: list[Entry], layer: Layer, shown: str) -> None:
        for entry in entries:
            where = f"{shown}:{entry.line}"
            if schema.get(entry.key) is None:
                issues.append(
                    ConfigIssue(
                        path=entry.key,
                        message=f"unknown key {entry.key!r}"
                        + did_you_mean(entry.key, schema.fields)
                        + "; remove it, or declare it in config/schema.yaml",
                        file=where,
                    )
                )
                continue
            if entry.text is None:
                continue  # `KEY:` with no value leaves the lower layers' value
            stacks.setdefault(entry.key, []).append(
                _Candidate(Source(layer, where), entry.text, where)
            )

    text, found = read_text(env_file, env_shown)
    issues.extend(found)
    # An unreadable file would make every required key "missing": report the file alone.
    file_ok = text is not None
    if text is not None:
        entries, found = parse_env_yaml(text, env_shown)
        issues.extend(found)
        file_ok = not any(i.path == "(root)" or i.path.startswith("line ") for i in found)
        take(entries, Layer.FILE, env_shown)

    if paths.env_local.is_file():
        local_shown = display_path(paths.env_local)
        if environment == DEVELOPMENT:
            files.append(local_shown)
            text, found = read_text(paths.env_local, local_shown)
            issues.extend(found)
            if text is not None:
                entries, found = parse_dotenv(text, local_shown)
                issues.extend(found)
                take(entries, Layer.ENV_LOCAL, local_shown)
        else:
            warnings.append(
                ConfigIssue(
                    path=".env.local",
                    message=f"ignored in {environment}: .env.local is for development only "
                    "(SEC-1); use the secret store for this environment",
                    file=local_shown,
                )
            )

    for spec in schema.fields.values():
        if spec.from_env and spec.from_env in env_vars:
            where = f"process environment ${spec.from_env}"
            stacks.setdefault(spec.key, []).append(
                _Candidate(
                    Source(Layer.PROCESS, f"${spec.from_env}"), env_vars[spec.from_env], where
                )
            )

    store = secrets
    if resolve_secrets and store is None:
        store = default_secret_store(paths, environment, environ)
    values: dict[str, ResolvedValue] = {}
    for spec in schema.fields.values():
        stack = stacks.get(spec.key, [])
        if not stack:
            if spec.required(environment) and file_ok:
                issues.append(_missing(spec, environment, env_shown))
            continue
        win = stack[-1]
        overridden = tuple(c.source for c in stack[:-1])
        (text_, secret_, reference), found = _judge(
            spec, win, environment, store if resolve_secrets else None
        )
        issues.extend(found)
        values[spec.key] = ResolvedValue(
            key=spec.key,
            source=win.source,
            text=text_,
            secret=secret_,
            reference=reference,
            overridden=overridden,
            platform_managed=spec.platform_managed,
        )
    issues.sort(key=_issue_order)
    resolved = ResolvedConfig(
        environment_name=environment,
        values=values,
        warnings=tuple(warnings),
        files=tuple(files),
    )
    return resolved, issues


def _issue_order(issue: ConfigIssue) -> tuple[str, int]:
    """By file, then line, so a report reads top to bottom."""
    file, _, line = (issue.file or "").rpartition(":")
    if line.isdigit():
        return file, int(line)
    return issue.file or "", 0


def _missing(spec: FieldSpec, environment: str, env_shown: str) -> ConfigIssue:
    example = (
        f"{spec.key}: secret://{spec.key.lower().replace('_', '-')}"
        if spec.secret
        else (f"{spec.key}: <value>")
    )
    return ConfigIssue(
        path=spec.key,
        message=f"required in {environment} but not set; add `{example}` to {env_shown}",
        file=env_shown,
    )


def _judge(
    spec: FieldSpec, win: _Candidate, environment: str, store: SecretStore | None
) -> tuple[_Value, list[ConfigIssue]]:
    """The winning candidate as ResolvedValue fields, and its problems."""
    issues: list[ConfigIssue] = []

    def add(message: str) -> None:
        issues.append(ConfigIssue(path=spec.key, message=message, file=win.file))

    text = win.text
    if text.startswith(SECRET_PREFIX):
        name = text[len(SECRET_PREFIX) :]
        if not _SECRET_NAME.match(name):
            add(
                "a secret reference is secret://NAME with letters, digits and /_+=.@- "
                "(e.g. secret://database-password)"
            )
            return (None, None, text), issues
        if store is not None:
            try:
                revealed = store.get(name)
            except DeployopsError as exc:
                why = (
                    "; ".join(i.message for i in exc.issues)
                    if isinstance(exc, ConfigError) and exc.issues
                    else exc.message
                )
                add(
                    f"unresolvable secret reference {text!r}: {why}"
                    + (f"; {exc.hint}" if exc.hint else "")
                )
            else:
                checked = spec if spec.secret else _as_secret(spec)
                _, problems = checked.check(revealed.reveal(), environment)
                if problems:
                    add(f"the secret {name!r}: " + "; ".join(problems))
        return (None, None, text), issues
    if spec.secret and not spec.literal_allowed(environment):
        suggested = spec.key.lower().replace("_", "-")
        add(
            f"a literal value is not allowed in {environment}: {spec.key} is a secret; store it "
            f"in the secret store and write {spec.key}: secret://{suggested}"
        )
        return (None, Secret(text), None), issues
    canonical, problems = spec.check(text, environment)
    if problems:
        add("; ".join(problems))
    final = canonical if canonical is not None else text
    if spec.secret:
        return (None, Secret(final), None), issues
    return (final, None, None), issues


def _as_secret(spec: FieldSpec) -> FieldSpec:
    """The same rules, with messages that never show the value."""
    import dataclasses

    return dataclasses.replace(spec, secret=True)


def resolve(
    paths: ConfigPaths,
    environment: str,
    *,
    environ: Mapping[str, str] | None = None,
    secrets: SecretStore | None = None,
    resolve_secrets: bool = True,
) -> ResolvedConfig:
    """Like :func:`load`, but raise one :class:`ConfigError` with every issue when invalid."""
    resolved, issues = load(
        paths, environment, environ=environ, secrets=secrets, resolve_secrets=resolve_secrets
    )
    if issues:
        raise ConfigError(
            issues,
            hint=f"fix the problems above, then run `deployops config validate -e {environment}`",
        )
    return resolved
