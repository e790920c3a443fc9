"""Run every benchmark: each ``bench/*.py`` (not starting with ``_``) that defines ``main()``.

.venv/bin/python bench/run_all.py [NAME ...]
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def discover(names: list[str] | None = None) -> list[Path]:
    found = [
        p
        for p in sorted(HERE.glob("*.py"))
        if not p.name.startswith("_") and p.name != Path(__file__).name
    ]
    if names:
        found = [p for p in found if p.stem in names]
    return found


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    failed: list[str] = []
    ran = 0
    for path in discover(names or None):
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        entry = getattr(module, "main", None)
        if not callable(entry):
            continue
        ran += 1
        print(f"== {path.stem}", flush=True)
        started = time.perf_counter()
        try:
            code = entry([])
        except Exception:
            traceback.print_exc()
            code = 1
        took = time.perf_counter() - started
        print(f"== {path.stem}: {'ok' if not code else 'FAILED'} in {took:.1f}s", flush=True)
        if code:
            failed.append(path.stem)
    print(f"{ran} benchmarks, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
