"""`make bench`: every benchmark, printed as tables.

1. API calls of a converged reconcile vs world size, of each scoped event reconcile, and
   event → converged time per demo scenario (bench/reconcile_calls.py);
2. handler cold import and first invocation (bench/handler_cold_start.py);
3. `python app.py` synth time and the Lambda code asset's size (bench/synth.py);
4. time to repair per demo scenario, before the watch and with it (bench/time_to_repair.py).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    print(
        f"machine: {platform.machine()} {cpu} · {os.cpu_count()} cores · Python {platform.python_version()}\n"
    )
    from bench import reconcile_calls, synth, time_to_repair

    reconcile_calls.main()
    print("\nHandler cold start (fresh processes, medians)", flush=True)
    code = subprocess.call(
        [sys.executable, str(ROOT / "bench" / "handler_cold_start.py"), "--runs", "5"], cwd=ROOT
    )
    print()
    synth.main()
    print("\nTime to repair per demo scenario", flush=True)
    time_to_repair.main()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
