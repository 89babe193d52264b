"""engine.blas: the BLAS thread limit holds while any thread is inside a limited call."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nerwin.engine.blas import blas_threads

pytest.importorskip("threadpoolctl")

# Run in a fresh process: this suite's conftest pins BLAS to one thread before numpy loads.
OVERLAP = """
import json, threading, time
import numpy as np
from threadpoolctl import threadpool_info
from nerwin.engine.blas import blas_threads
def count(): return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
before, seen = count(), []
def short():
    with blas_threads(1): time.sleep(0.1)
def long():
    with blas_threads(1): time.sleep(0.4); seen.append(count())
a, b = threading.Thread(target=short), threading.Thread(target=long)
a.start(); time.sleep(0.03); b.start(); a.join(); b.join()
print(json.dumps({"before": before, "inside": seen[0], "after": count()}))
"""


def test_blas_limit_holds_until_the_last_thread_leaves() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"
    done = subprocess.run([sys.executable, "-c", OVERLAP], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    if set(found["before"]) != {2}:
        pytest.skip(f"BLAS did not start with two threads here ({found['before']})")
    assert set(found["inside"]) == {1}  # the other thread leaving did not lift the limit
    assert found["after"] == found["before"]  # and the last one out restored it


def test_blas_nested_blocks_keep_the_outer_limit() -> None:
    from threadpoolctl import threadpool_info

    with blas_threads(1):
        with blas_threads(1):
            pass
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}
