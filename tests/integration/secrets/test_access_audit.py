"""Roles and the tamper-evident audit log (SEC-4), through the CLI on a real state store.

A viewer is refused a deploy with exit 5 and a message naming the role it needs; every checked
command leaves an audit entry (who, what, when, from where, outcome); ``audit verify`` fails
on an edited or a removed entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, update

from deployops.config.project import load_project
from deployops.errors import EXIT_ACCESS_DENIED
from deployops.store import StateStore
from deployops.store import schema as t


def _tokens(cli: Callable[..., Any], project: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, role in (("val", "viewer"), ("dee", "deployer"), ("ada", "admin")):
        res = cli(project, "access", "add-token", name, "--role", role, "-o", "json")
        assert res.returncode == 0, res.stderr
        out[role] = json.loads(res.stdout)["token"]
    return out


def test_sec4_viewer_refused_deploy_with_its_own_exit_code(
    cli: Callable[..., Any], project: Path
) -> None:
    tokens = _tokens(cli, project)
    res = cli(project, "deploy", "--version", "1.0.0", env={"DEPLOYOPS_TOKEN": tokens["viewer"]})
    assert res.returncode == EXIT_ACCESS_DENIED == 5
    assert "val has the role viewer" in res.stderr
    assert "needs the role deployer" in res.stderr
    # reads stay open to a viewer
    ok = cli(
        project, "deployments", "list", "-o", "json", env={"DEPLOYOPS_TOKEN": tokens["viewer"]}
    )
    assert ok.returncode == 0, ok.stderr
    # a deployer is not refused by the role check (the deploy itself then fails on config/platform)
    dep = cli(project, "lock", "release", "x/y", env={"DEPLOYOPS_TOKEN": tokens["deployer"]})
    assert dep.returncode == 5 and "needs the role admin" in dep.stderr
    who = cli(project, "access", "whoami", "-o", "json", env={"DEPLOYOPS_TOKEN": tokens["admin"]})
    assert json.loads(who.stdout)["role"] == "admin"
    bad = cli(project, "deploy", "--version", "1.0.0", env={"DEPLOYOPS_TOKEN": "dop_wrong"})
    assert bad.returncode == 2 and "not in this project's access file" in bad.stderr

    entries = json.loads(cli(project, "audit", "list", "-o", "json").stdout)
    refused = [e for e in entries if e["outcome"] == "refused"]
    assert {(e["actor"], e["action"]) for e in refused} == {
        ("val", "deploy"),
        ("dee", "lock release"),
    }
    for e in entries:
        assert e["ts"] and e["actor"] and e["source"]
    # tokens never reach the audit log
    raw = json.dumps(entries)
    for token in tokens.values():
        assert token not in raw


def test_sec4_audit_verify_detects_an_edited_and_a_removed_entry(
    cli: Callable[..., Any], project: Path
) -> None:
    _tokens(cli, project)
    for _ in range(3):
        cli(project, "lock", "release", "a/b", "--force", "--reason", "stale")
    good = cli(project, "audit", "verify", "-o", "json")
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] and report["entries"] >= 6
    head = report["head"]

    url = load_project(project / "deployops.yaml").state_url()
    engine = create_engine(url)
    with engine.begin() as conn:
        rows = conn.execute(t.audit_log.select().order_by(t.audit_log.c.id)).mappings().all()
        ids = [r["id"] for r in rows]
        original = rows[2]["actor"]
        conn.execute(update(t.audit_log).where(t.audit_log.c.id == ids[2]).values(actor="mallory"))
    edited = cli(project, "audit", "verify")
    assert edited.returncode == 1
    assert f"entry #{ids[2]} was edited" in edited.stderr
    with engine.begin() as conn:
        conn.execute(update(t.audit_log).where(t.audit_log.c.id == ids[2]).values(actor=original))
    assert cli(project, "audit", "verify").returncode == 0  # put back as written: intact again

    with engine.begin() as conn:
        conn.execute(delete(t.audit_log).where(t.audit_log.c.id == ids[3]))
    removed = cli(project, "audit", "verify", "-o", "json")
    assert removed.returncode == 1
    problems = json.loads(removed.stdout)["problems"]
    assert any(p["entry"] == ids[4] and "removed" in p["message"] for p in problems)

    # removing the newest entries is caught against a head written down earlier
    with engine.begin() as conn:
        conn.execute(delete(t.audit_log).where(t.audit_log.c.id >= ids[-2]))
    cut = cli(project, "audit", "verify", "--head", head, "-o", "json")
    assert cut.returncode == 1
    assert any(
        "newer entries were removed" in p["message"] for p in json.loads(cut.stdout)["problems"]
    )
    engine.dispose()


def test_sec4_concurrent_writers_never_fork_the_chain(tmp_path: Path) -> None:
    """Two stores on one database append at once: one chain, every entry verifies."""
    import threading
    from datetime import UTC, datetime

    from deployops.domain.audit import verify_chain
    from deployops.store import AuditRecord
    from deployops.store.store import audit_fields

    url = f"sqlite:///{tmp_path / 'state.db'}"
    stores = [StateStore.open(url), StateStore.open(url)]

    def write(store: StateStore, who: str) -> None:
        for i in range(25):
            store.audit(AuditRecord(ts=datetime.now(tz=UTC), actor=who, action=f"a{i}"))

    threads = [threading.Thread(target=write, args=(s, f"w{n}")) for n, s in enumerate(stores)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    entries = stores[0].audit_log(limit=None, oldest_first=True)
    assert len(entries) == 50
    assert (
        verify_chain(
            (
                int(e.id or 0),
                e.prev_hash or "",
                e.hash,
                audit_fields(
                    int(e.id or 0), e.ts, e.actor, e.action, e.target, e.detail, e.source, e.outcome
                ),
            )
            for e in entries
        )
        == []
    )
    for s in stores:
        s.close()


def test_sec4_secret_get_is_admin_only_and_audited(
    cli: Callable[..., Any], project: Path, monkeypatch: Any
) -> None:
    import io

    import yaml

    doc = yaml.safe_load((project / "deployops.yaml").read_text())
    env = next(iter(doc["environments"]))
    doc["secrets"] = {"stores": {env: {"type": "encrypted-file"}}}
    (project / "deployops.yaml").write_text(yaml.safe_dump(doc))
    assert cli(project, "secrets", "keygen", "-e", env).returncode == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("the-api-key-value"))
    assert cli(project, "secrets", "set", "api-keys", "-e", env).returncode == 0
    tokens = _tokens(cli, project)
    refused = cli(
        project,
        "secrets",
        "get",
        "api-keys",
        "-e",
        env,
        env={"DEPLOYOPS_TOKEN": tokens["deployer"]},
    )
    assert refused.returncode == 5 and "needs the role admin" in refused.stderr
    assert "the-api-key-value" not in refused.stdout + refused.stderr
    got = cli(
        project, "secrets", "get", "api-keys", "-e", env, env={"DEPLOYOPS_TOKEN": tokens["admin"]}
    )
    assert got.returncode == 0 and got.stdout.strip() == "the-api-key-value"
    status = cli(project, "secrets", "status", "-e", env, "-o", "json")
    assert status.returncode == 0 and "the-api-key-value" not in status.stdout
    entries = json.loads(cli(project, "audit", "list", "-o", "json").stdout)
    reads = [e for e in entries if e["action"] == "secret.read"]
    assert [(e["actor"], e["target"]) for e in reads] == [("ada", f"{env}/api-keys")]
    assert all("the-api-key-value" not in json.dumps(e) for e in entries)
