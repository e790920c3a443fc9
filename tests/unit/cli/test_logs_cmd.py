"""DR-1 logs: ``deployops logs SERVICE`` reads every replica's log of the service (both
colours), filters with --grep and --since, follows new lines, and prunes past the retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from deployops.clock import SystemClock
from deployops.drivers.local.logs import LocalLogs

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


def _project(tmp_path: Path) -> Path:
    doc = {
        "project": "shop",
        "environments": {"development": {"platform": "local"}},
        "services": {"web": {"port": 18482, "command": ["python3", "app.py"]}},
    }
    cfg = tmp_path / "deployops.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    logs = tmp_path / ".deployops" / "local" / "development" / "logs"
    (logs / "web-blue").mkdir(parents=True)
    (logs / "web-green").mkdir(parents=True)
    (logs / "api-blue").mkdir(parents=True)
    (logs / "web-blue" / "web-blue-1.log").write_text("listening\nERROR boom [x]\n")
    (logs / "web-green" / "web-green-1.log").write_text("listening\nok\n")
    (logs / "api-blue" / "api-blue-1.log").write_text("ERROR not ours\n")
    old = logs / "web-blue" / "web-blue-0.log"
    old.write_text("ERROR ancient\n")
    ninety_one_days = time.time() - 91 * 86400
    os.utime(old, (ninety_one_days, ninety_one_days))
    return cfg


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEPLOYOPS, "-c", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_logs_of_a_service_with_grep_since_and_json(tmp_path: Path) -> None:
    cfg = _project(tmp_path)
    out = _cli(cfg, "logs", "web", "--grep", "ERROR")
    assert out.returncode == 0, out.stderr
    assert "ERROR boom [x]" in out.stdout  # brackets printed as written
    assert "not ours" not in out.stdout
    assert "ancient" in out.stdout
    recent = _cli(cfg, "-o", "json", "logs", "web", "--since", "1h")
    lines = [json.loads(x) for x in recent.stdout.splitlines()]
    assert {x["source"] for x in lines} == {"web-blue-1", "web-green-1"}
    assert not any("ancient" in x["line"] for x in lines)
    bad = _cli(cfg, "logs", "web", "--grep", "(")
    assert bad.returncode == 2
    assert "regular expression" in bad.stderr


def test_logs_prune_deletes_files_past_the_90_day_retention(tmp_path: Path) -> None:
    cfg = _project(tmp_path)
    out = _cli(cfg, "-o", "json", "logs", "web", "--prune")
    assert out.returncode == 0, out.stderr
    deleted = json.loads(out.stdout)["deleted"]
    assert [Path(p).name for p in deleted] == ["web-blue-0.log"]


def test_follow_prints_lines_appended_after_it_started(tmp_path: Path) -> None:
    _project(tmp_path)
    root = tmp_path / ".deployops" / "local" / "development"
    reader = LocalLogs(root=root, clock=SystemClock())
    stream = reader.follow("web", poll_s=0.05, max_s=5)
    with (root / "logs" / "web-green" / "web-green-1.log").open("a") as f:
        f.write("fresh line\n")
    got = next(stream)
    assert got.text == "fresh line"
    assert got.source == "web-green-1"
