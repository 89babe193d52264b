"""Train a config with and without a gazetteer over seeds; print what the place names change on dev.

usage: python scripts/gazetteer_ablation.py --config conll2003-random --seeds 0 1 2 \
           --variant "without=" --variant "geonames=data.gazetteer=geonames" --keep /tmp/abl

Per variant (mean over seeds, and each seed): dev LOC F1; recall of dev's location entities whose
text never occurs as a location in train ("new names"); and, of dev's organisations that contain
a GeoNames name (clubs and companies named after places, such as `Manchester United`), the share
that the model leaves without any location token ("place-named ORG kept clean"). Models are kept
under --keep/VARIANT-seedN (re-used when already there, so a second call only reports).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

from nerwin.api import load_tagger, read_config, train
from nerwin.data.corpus import read_corpus
from nerwin.data.coverage import gold_entities, location_texts
from nerwin.data.gazetteer import Gazetteer
from nerwin.data.placenames import geonames_entries
from nerwin.data.schemes import binary_to_spans


def entities(corpus, kinds: set[str]) -> list[tuple[int, int, str]]:
    """Gold entities of `kinds` as (start, end, text) in corpus token offsets."""
    return [(s, e, text) for s, e, kind, text in gold_entities(corpus) if kind in kinds]


def place_named(corpus, orgs, gazetteer: Gazetteer) -> list[tuple[int, int, str]]:
    """The organisations among `orgs` that contain a (capitalised) gazetteer name."""
    words = [w for s in corpus.sentences for w in s.words]
    lengths = np.array([len(s.words) for s in corpus.sentences])
    covered = np.zeros(len(words), bool)
    for start, stop, _ in gazetteer.spans(words, lengths):
        covered[start:stop] = True
    return [(s, e, t) for s, e, t in orgs if covered[s:e].any()]


def measures(model_dir: Path, config, dev, new_locs, place_orgs) -> dict:
    """Dev LOC F1 and the two targeted figures of one trained model."""
    tagger, _, meta = load_tagger(model_dir)
    probs = tagger.probabilities([s.words for s in dev.sentences])
    labels = tagger.labels(probs)
    predicted = {tuple(span) for span in binary_to_spans(labels).tolist()}
    found_new = sum((s, e) in predicted for s, e, _ in new_locs)
    clean = sum(not labels[s:e].any() for s, e, _ in place_orgs)
    return {
        "f1": 100 * meta["dev"]["f1"],
        "new_recall": 100 * found_new / max(1, len(new_locs)),
        "org_clean": 100 * clean / max(1, len(place_orgs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="conll2003-random")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--set", action="append", default=[], help="override for every variant")
    parser.add_argument("--keep", default="gazetteer-ablation", help="folder for the models")
    args = parser.parse_args()
    variants = [
        v.partition("=")[::2]
        for v in args.variant or ["without=", "geonames=data.gazetteer=geonames"]
    ]
    base = read_config(args.config, args.set)
    train_corpus = read_corpus(base.data.train, base)
    dev = read_corpus(base.data.dev, base)
    locs = set(base.data.location_types)
    seen = location_texts(train_corpus, locs)
    new_locs = [x for x in entities(dev, locs) if x[2] not in seen]
    names = Gazetteer.from_entries(geonames_entries()[0])
    place_orgs = place_named(dev, entities(dev, {"ORG"}), names)
    print(
        f"dev: {len(new_locs)} location entities whose text is never a location in train; "
        f"{len(place_orgs)} organisations containing a GeoNames name"
    )
    for name, rest in variants:
        overrides = [item for item in re.split(r",(?=[\w.]+=)", rest) if item]
        rows = []
        for seed in args.seeds:
            out = Path(args.keep) / f"{name}-seed{seed}"
            meta = out / "model" / "meta.json"
            if not meta.exists() or "dev" not in json.loads(meta.read_text(encoding="utf-8")):
                config = read_config(args.config, [*args.set, *overrides, f"train.seed={seed}"])
                started = time.perf_counter()
                train(config, out)
                print(f"  trained {out} in {time.perf_counter() - started:.0f} s", flush=True)
            rows.append(measures(out / "model", base, dev, new_locs, place_orgs))
            print(
                f"  {name} seed {seed}: "
                + json.dumps({k: round(v, 2) for k, v in rows[-1].items()}),
                flush=True,
            )
        means = {k: statistics.mean(r[k] for r in rows) for k in rows[0]}
        spread = statistics.stdev(r["f1"] for r in rows) if len(rows) > 1 else 0.0
        print(
            f"{name}: dev LOC F1 {means['f1']:.2f} (std {spread:.2f}); new-name recall "
            f"{means['new_recall']:.2f}; place-named ORG kept clean {means['org_clean']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
