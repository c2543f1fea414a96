"""Peak memory of loading and splitting a large synthetic interaction log (issue 4, must-show 5).

    python benchmarks/data_memory.py                       # 20M rows, whitespace text, integer ids
    python benchmarks/data_memory.py --format parquet --string-ids

The log is written to a temporary file first; a child process then runs the whole `data=interactions`
path (read in chunks, clean, de-duplicate, split, vocabularies, tensors) and the parent reads the
child's RSS high-water mark (getrusage RUSAGE_CHILDREN), so writing the file never counts.
Not a timed test: the seconds printed depend on the machine and on what else runs there.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
TARGET_GB = 3.0


def write_log(path: Path, rows: int, users: int, items: int, fmt: str, string_ids: bool) -> None:
    """Zipf-popular items, uniform users, timestamps over a year; written 2M rows at a time."""
    rng = np.random.default_rng(0)
    chunk = 2_000_000
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        user = rng.integers(0, users, n)
        item = (rng.zipf(1.1, n) - 1) % items
        columns = {
            "user": pa.array([f"user_{u:07d}" for u in user]) if string_ids else pa.array(user),
            "item": pa.array([f"sku_{i:06d}" for i in item]) if string_ids else pa.array(item),
            "rating": pa.array(rng.integers(1, 6, n)),
            "timestamp": pa.array(1_600_000_000 + rng.integers(0, 86400 * 365, n)),
        }
        table = pa.table(columns)
        if fmt == "parquet":
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        else:
            with open(path, "ab") as f:
                pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, delimiter=" "))
    if writer is not None:
        writer.close()


def measure(path: Path, fmt: str, split: str) -> None:
    """Child process: the full loading path, then print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from recsys.data.sources.interaction_log import InteractionLogSource

    started = time.time()
    columns = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}
    if fmt != "parquet":
        columns = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}
    data = InteractionLogSource(
        path=str(path),
        format=fmt,
        header=fmt == "parquet",
        columns=columns,
        split={"method": split},
    )()
    print(
        json.dumps(
            {
                "seconds": round(time.time() - started, 1),
                "summary": data.summary(),
                "rows_removed_by_step": data.report["rows_removed_by_step"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--format", choices=["whitespace", "parquet"], default="whitespace")
    parser.add_argument("--split", choices=["random", "leave_last_n", "temporal"], default="random")
    parser.add_argument("--string-ids", action="store_true", help="ids like user_0000042")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure, args.format, args.split)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("log.parquet" if args.format == "parquet" else "log.txt")
        write_log(path, args.rows, args.users, args.items, args.format, args.string_ids)
        size_mb = path.stat().st_size / 1e6
        cmd = [sys.executable, __file__, "--measure", str(path), "--format", args.format,
               "--split", args.split]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        child = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9  # KiB on Linux
    name = f"data_memory_{args.format}_{'str' if args.string_ids else 'int'}_{args.split}"
    result = {
        "peak_rss_gb": round(peak_gb, 3),
        "target_gb": TARGET_GB,
        "under_target": peak_gb < TARGET_GB,
        "rows": args.rows,
        "file_mb": round(size_mb, 1),
        "format": args.format,
        "string_ids": args.string_ids,
        "split": args.split,
        "load_seconds": child["seconds"],
        "summary": child["summary"],
        "rows_removed_by_step": child["rows_removed_by_step"],
        "command": " ".join(["python", "benchmarks/data_memory.py", *sys.argv[1:]]),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"peak RSS {peak_gb:.2f} GB (target < {TARGET_GB} GB) loading and splitting {args.rows:,} rows "
          f"({args.format}, {'string' if args.string_ids else 'integer'} ids, {args.split} split) "
          f"in {child['seconds']} s")  # fmt: skip
    print(f"command: {result['command']}  ->  {args.out / (name + '.json')}")


if __name__ == "__main__":
    main()
