"""Drill benchmark (DR-7): each drill's achieved RTO and RPO against the policy's targets, on
the local platform with the sample service writing marker rows every second.

.venv/bin/python bench/drills.py [SCENARIO ...] (default: all four scenarios)

A throwaway project: the application's PostgreSQL (pgBackRest, WAL archived), the sample service
(2 replicas behind HAProxy) using it, notifications to a loopback receiver standing for Slack,
an encrypted-file secret store (the security-incident drill rotates its managed secrets).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import update_section, write_result  # noqa: E402

from tests.e2e.conftest import running_project  # noqa: E402
from tests.e2e.dr_support import _with_db_port, start_db_and_deploy  # noqa: E402

SCENARIOS = ("db-loss", "data-corruption", "region-failure", "security-incident")


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    import yaml

    scenarios = tuple(argv or ()) or SCENARIOS
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    results: list[dict[str, Any]] = []
    try:
        with running_project(
            command=[sys.executable, "app.py"],
            blue_green={
                "health_timeout": 20,
                "stability_window": 1,
                "sample_interval": 0.5,
                "smoke_checks": [{"path": "/health", "status": 200}],
            },
        ) as p:
            _with_db_port(p)
            doc = yaml.safe_load(p.path.read_text())
            url = f"http://127.0.0.1:{hook.server_address[1]}/hooks/team"
            doc["notifications"] = {
                "channels": {"team": {"type": "slack", "webhook_url": url}},
                "routes": {"info": ["team"], "warning": ["team"], "critical": ["team"]},
            }
            doc["secrets"] = {"stores": {"development": {"type": "encrypted-file"}}}
            p.path.write_text(yaml.safe_dump(doc, sort_keys=False))
            assert p.cli("secrets", "keygen").returncode == 0
            try:
                start_db_and_deploy(p)
                for sc in scenarios:
                    print(f"  drill {sc}", flush=True)
                    out = p.cli("-o", "json", "dr", "drill", sc, "--wait", "300", timeout=900)
                    report = json.loads(out.stdout)
                    o = report["outcome"]
                    results.append(
                        {
                            "scenario": sc,
                            "exit": out.returncode,
                            "rto_s": o["rto_s"],
                            "rto_target_s": o["rto_target_s"],
                            "rpo_s": o["rpo_s"],
                            "rpo_target_s": o["rpo_target_s"],
                            "passed": o["passed"],
                            "markers_committed": report["markers_committed"],
                            "notifications": report["notifications"],
                        }
                    )
                    print(f"    RTO {o['rto_s']} s, RPO {o['rpo_s']} s", flush=True)
            finally:
                p.cli("db", "stop")
    finally:
        hook.shutdown()
    write_result("drills", {"drills": results})

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    rows = "\n".join(
        f"| {r['scenario']} | {fmt(r['rto_s'])} | {r['rto_target_s']:.0f} s | {fmt(r['rpo_s'])} "
        f"| {r['rpo_target_s']:.0f} s | {r['markers_committed']} | "
        f"{'passed' if r['passed'] else '**failed**'} |"
        for r in results
    )
    body = f"""
Each drill on the local platform (2 replicas of the sample service behind HAProxy, the
application's PostgreSQL 15 with pgBackRest), marker rows written through the service every
second. RTO: failure -> the first marker the service accepts after the recovery. RPO: the last
marker committed before the failure -> the last of those present afterwards. Targets: the
database policy (DR-1: RTO 1 h, RPO 5 min). The drills run one after another on one project
(each recovers onto the instance the previous one left).

| drill | RTO | target | RPO | target | markers committed | result |
|---|---|---|---|---|---|---|
{rows}

The security-incident drill declares every managed secret leaked (nothing is broken): its RTO
runs from the declaration to serving on the rotated values (four secrets rotated, every replica
replaced), its RPO is the data lost meanwhile.

Produced by: `.venv/bin/python bench/drills.py` (raw: `bench/results/drills.json`).
"""
    update_section("Disaster-recovery drills (DR-7)", body)
    print(body)
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
