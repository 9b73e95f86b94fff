"""Run every benchmark; ``--quick`` is the smoke run CI does so the scripts never rot.

python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "bench_overhead.py",
    "bench_cli.py",
    "bench_limiter.py",
    "bench_polling_sim.py",
    "bench_polling.py",
    "bench_streaming.py",
    "bench_scale.py",
    "bench_redis.py",
    "bench_peers.py",
]


def main() -> int:
    extra = sys.argv[1:]
    for script in SCRIPTS:
        print(f"=== {script} {' '.join(extra)}", flush=True)
        r = subprocess.run([sys.executable, str(HERE / script), *extra], cwd=HERE, timeout=900)
        if r.returncode != 0:
            print(f"{script} failed with exit code {r.returncode}", file=sys.stderr)
            return r.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
