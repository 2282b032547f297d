#!/usr/bin/env python3
"""bench/memory: where the operator's memory goes, by source line, under tracemalloc.

    .venv/bin/python bench/admission.py --n 1000 --keep      # leaves 1,000 served models running
    .venv/bin/python bench/memory.py --after 60 --out .cache/memory.txt -- \\
        run --kubeconfig .cache/bench-cluster/kubeconfig --namespace 'bench-*' --webhook-port 0

Runs `modelgate <args>` in this process with tracemalloc on; after `--after` seconds writes the
traced total, the top allocations by file and by line, and how many Kubernetes object bodies are
alive by kind (with or without managedFields: a whole body still alive is one nobody trimmed) to
`--out`. tracemalloc itself inflates RSS several times over and slows start-up several fold: read
the traced sizes, not ru_maxrss, and give `--after` time for the operator to converge.
"""

from __future__ import annotations

import argparse
import collections
import gc
import resource
import sys
import threading
import time
import tracemalloc
from pathlib import Path


def dump(after: float, out: Path) -> None:
    time.sleep(after)
    snap = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    lines = [
        f"traced current {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB; "
        f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (inflated by tracing)",
        "",
    ]
    for key in ("filename", "lineno"):
        for stat in snap.statistics(key)[:25]:
            frame = stat.traceback[0]
            where = frame.filename if key == "filename" else f"{frame.filename}:{frame.lineno}"
            lines.append(f"{stat.size / 1e6:8.1f} MB {stat.count:8d} {where}")
        lines.append("")
    lines += ["live object bodies (kind, with managedFields): count"]
    lines += [f"{count:8d} {kind}" for kind, count in bodies().most_common(20)]
    out.write_text("\n".join(lines) + "\n")
    print(f"bench: wrote {out}", file=sys.stderr, flush=True)


def bodies() -> collections.Counter[tuple[str, bool]]:
    gc.collect()
    found: collections.Counter[tuple[str, bool]] = collections.Counter()
    for o in gc.get_objects():
        if type(o) is dict and isinstance(o.get("metadata"), dict) and isinstance(o.get("kind"), str):
            found[(o["kind"], "managedFields" in o["metadata"])] += 1
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--after", type=float, default=60.0)
    p.add_argument("--out", type=Path, default=Path(".cache/memory.txt"))
    p.add_argument("modelgate_args", nargs=argparse.REMAINDER)
    args = p.parse_args()
    tracemalloc.start(1)
    threading.Thread(target=dump, args=(args.after, args.out), daemon=True).start()
    from modelgate.cli.main import main as modelgate

    return modelgate([a for a in args.modelgate_args if a != "--"])


if __name__ == "__main__":
    sys.exit(main())
