"""`python app.py` synth time (warm dependency cache) and the Lambda code asset's size."""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def synth_once(outdir: Path) -> float:
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_OUTDIR": str(outdir),
    }
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "app.py", "-c", "config=federation.example.yaml"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def asset_sizes(outdir: Path) -> tuple[int, int, int]:
    """(files, unzipped bytes, zipped bytes) of the Lambda code asset."""
    assets = [d for d in outdir.glob("asset.*") if (d / "lambdas").is_dir()]
    if not assets:
        return 0, 0, 0
    root = assets[0]
    files = [p for p in root.rglob("*") if p.is_file()]
    raw = sum(p.stat().st_size for p in files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in files:
            z.write(p, p.relative_to(root))
    return len(files), raw, len(buf.getvalue())


def measure(runs: int = 3) -> dict[str, Any]:
    """Synth times (after one warm-up synth) and the Lambda code asset's size."""
    out = ROOT / "cdk.out"
    synth_once(out)  # warm the dependency cache
    times = [synth_once(out) for _ in range(runs)]
    n, raw, zipped = asset_sizes(out)
    stacks = len(list(out.glob("*.template.json")))
    return {
        "times_s": times,
        "stacks": stacks,
        "files": n,
        "unzipped_bytes": raw,
        "zipped_bytes": zipped,
    }


def render(m: dict[str, Any]) -> str:
    times = m["times_s"]
    return "\n".join(
        [
            f"python app.py ({m['stacks']} stacks, cdk-nag AwsSolutions), warm dependency cache: "
            f"median "
            f"{statistics.median(times):.1f} s ({', '.join(f'{t:.1f}' for t in times)})",
            f"Lambda code asset: {m['files']} files, {m['unzipped_bytes'] / 1e6:.1f} MB unzipped, "
            f"{m['zipped_bytes'] / 1e6:.1f} MB zipped (limits 250 MB / 50 MB)",
        ]
    )


def main(runs: int = 3) -> None:
    print("CDK synth and the Lambda asset")
    print(render(measure(runs)))


if __name__ == "__main__":
    main()
