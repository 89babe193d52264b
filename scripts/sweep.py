"""Train named variants of a config over several seeds; print dev LOC F1 (mean, spread) of each.

usage: python scripts/sweep.py --config configs/conll2003.yaml --seeds 0 1 2 \
           --variant "base=" --variant "no caps=model.caps_dim=0" \
           --variant "lr 0.1=train.lr=0.1,train.epochs=5"
Each variant is NAME=KEY=VALUE[,KEY=VALUE...]; results are also appended as JSON lines to --log.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from nerwin.api import train
from nerwin.config import load_config


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'name=k=v,k=v' -> (name, ['k=v', 'k=v'])."""
    name, _, rest = text.partition("=")
    return name, [item for item in rest.split(",") if item]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument(
        "--set", action="append", default=[], help="override applied to every variant"
    )
    parser.add_argument("--log", default="sweep.jsonl")
    args = parser.parse_args()
    rows = []
    for name, overrides in map(parse_variant, args.variant or ["base="]):
        f1s, secs = [], []
        for seed in args.seeds:
            cfg = load_config(args.config, [*args.set, *overrides, f"train.seed={seed}"])
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                result = train(cfg, out)
                secs.append(time.perf_counter() - started)
            e = result.dev.entity
            f1s.append(100 * e.f1)
            best = [r for r in result.reports if r.best][-1]
            single = not result.member_epochs  # an ensemble has no one "best epoch at 0.5"
            record = {
                "variant": name,
                "overrides": overrides,
                "seed": seed,
                "f1": 100 * e.f1,
                "f1_at_0.5": 100 * best.dev.entity.f1 if best.dev and single else None,
                "precision": 100 * e.precision,
                "recall": 100 * e.recall,
                "best_epoch": result.best_epoch if single else list(result.member_epochs),
                "threshold": result.threshold,
                "seconds": secs[-1],
            }
            with open(args.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
        spread = statistics.stdev(f1s) if len(f1s) > 1 else 0.0
        rows.append((name, statistics.mean(f1s), spread, min(f1s), max(f1s), statistics.mean(secs)))
    print("\n| variant | dev LOC F1 mean | std | min | max | seconds/run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, mean, spread, lo, hi, sec in rows:
        print(f"| {name} | {mean:.2f} | {spread:.2f} | {lo:.2f} | {hi:.2f} | {sec:.0f} |")


if __name__ == "__main__":
    main()
