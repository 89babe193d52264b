"""The nerwin training step by hand in numpy, without the engine: the floor for its overhead.

Same model (E, F, W, b, u, c; ReLU; float32), same initial parameters, same data order and batches
as nerwin (see bench_common.prepare), same loss (mean of logaddexp(0, s) - y s) and plain SGD:

    x = [E[w].reshape(n, -1), F[c].reshape(n, -1)]     z = x W + b     h = relu(z)
    s = h u + c                                        ds = (sigmoid(s) - y) / n
    gu = h^T ds   gc = sum ds   dz = (ds u^T) * (z > 0)   gW = x^T dz (outer product at n = 1)
    gb = sum dz   dx = dz W^T   -> rows of E and F; dense update of W, b, u, c

The embedding rows are updated with the variant picked by --sparse. The default, `flat`
(np.subtract.at on the flat table with flat element indices, as nerwin's optimizer does), was the
fastest of the four correct variants in SPARSE_VARIANTS when measured on this machine: updating E
took 8 / 44 / 218 us at batch 1 / 32 / 256, against `rows` (subtract.at by row) 10 / 92 / 816,
`unique` (sort + add.reduceat) 33 / 61 / 443 and `bincount` 33 / 56 / 369. Also folded in: the
gather writes straight into x (no concatenate), -lr is applied to dz once (it is b's update and
scales W's), and W's update reuses one buffer (einsum outer product at batch 1, x^T dz above).

usage: python scripts/bench_fused.py [--batch 1 32 256] [--windows N] [--sparse flat]
(bench.py runs this module's FusedStep in its own subprocesses; this entry point is for a
quick look.)
"""

from __future__ import annotations

import argparse

import bench_common as bc  # sets the BLAS thread variables before numpy is imported
import numpy as np


def _subtract_flat(table: np.ndarray, ids: np.ndarray, rows: np.ndarray, lr: np.float32) -> None:
    """np.subtract.at on the flat table with flat element indices (nerwin's optimizer does this)."""
    d = table.shape[1]
    flat = (ids[:, None] * d + np.arange(d)).reshape(-1)
    np.subtract.at(table.reshape(-1), flat, (rows * lr).reshape(-1))


def _subtract_rows(table: np.ndarray, ids: np.ndarray, rows: np.ndarray, lr: np.float32) -> None:
    """np.subtract.at with row indices on the 2-D table."""
    np.subtract.at(table, ids, rows * lr)


def _unique_sum(table: np.ndarray, ids: np.ndarray, rows: np.ndarray, lr: np.float32) -> None:
    """Sum rows of repeated ids by sort + np.add.reduceat, then one fancy-indexed subtraction."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    summed = np.add.reduceat(rows[order], starts, axis=0)
    table[sorted_ids[starts]] -= summed * lr


def _bincount(table: np.ndarray, ids: np.ndarray, rows: np.ndarray, lr: np.float32) -> None:
    """np.unique + per-column np.bincount over the compacted ids (float64 sums, cast back)."""
    unique, inverse = np.unique(ids, return_inverse=True)
    k, d = len(unique), table.shape[1]
    flat = (inverse[:, None] * d + np.arange(d)).reshape(-1)
    summed = np.bincount(flat, weights=rows.reshape(-1), minlength=k * d).reshape(k, d)
    table[unique] -= (summed * lr).astype(table.dtype)


SPARSE_VARIANTS = {
    "flat": _subtract_flat,
    "rows": _subtract_rows,
    "unique": _unique_sum,
    "bincount": _bincount,
}


class FusedStep:
    """One hand-written SGD step of the window classifier, no autodiff engine."""

    name = "fused"

    def __init__(self, params: dict[str, np.ndarray], lr: float = bc.LR, sparse: str = "flat"):
        p = {k: np.ascontiguousarray(v, dtype=np.float32).copy() for k, v in params.items()}
        self.E, self.F, self.W, self.b, self.u, self.c = (p[k] for k in bc.PARAM_NAMES)
        self.u0 = self.u[:, 0]  # (H,) view of u (H, 1)
        self.d, self.k = self.E.shape[1], self.F.shape[1]
        self.window = self.W.shape[0] // (self.d + self.k)
        self.word_width = self.window * self.d  # x = [word vectors | caps vectors]
        self.lr, self.neg_lr = np.float32(lr), np.float32(-lr)
        self.sparse_update = SPARSE_VARIANTS[sparse]
        self.w_step = np.empty_like(self.W)  # -lr * dJ/dW, reused every step

    def forward(self, words: np.ndarray, caps: np.ndarray) -> tuple[np.ndarray, ...]:
        """x, z (pre-activation), h, s for a batch of windows."""
        n, ww = len(words), self.word_width
        x = np.empty((n, self.W.shape[0]), np.float32)  # gather straight into x: no concatenate
        np.take(self.E, words, axis=0, out=x[:, :ww].reshape(n, self.window, self.d), mode="clip")
        np.take(self.F, caps, axis=0, out=x[:, ww:].reshape(n, self.window, self.k), mode="clip")
        z = x @ self.W
        z += self.b
        h = np.maximum(z, np.float32(0))
        s = h @ self.u0
        s += self.c
        return x, z, h, s

    def step(self, words: np.ndarray, caps: np.ndarray, labels: np.ndarray) -> float:
        """Forward, backward by hand and SGD update; returns the mean loss of the batch."""
        n = len(words)
        x, z, h, s = self.forward(words, caps)
        loss = float(np.mean(np.logaddexp(np.float32(0), s) - labels * s))
        ds = _sigmoid(s)
        ds -= labels
        ds *= np.float32(1.0 / n)  # dJ/ds (n,)
        gu = h.T @ ds  # dJ/du (H,)
        dz = np.multiply.outer(ds, self.u0)  # dJ/dh (n, H)
        dz *= z > 0  # dJ/dz
        dx = dz @ self.W.T  # dJ/dx (n, 275), before W changes
        dz *= self.neg_lr  # -lr dJ/dz: the update of b, and of W below
        if n == 1:  # BLAS is slow for a 1-row x^T dz: outer product
            np.einsum("i,j->ij", x[0], dz[0], out=self.w_step)
        else:
            np.matmul(x.T, dz, out=self.w_step)
        self.W += self.w_step
        self.b += dz.sum(axis=0)
        self.u0 -= self.lr * gu
        self.c -= self.lr * ds.sum(keepdims=True)
        ww = self.word_width
        self.sparse_update(self.E, words.reshape(-1), dx[:, :ww].reshape(-1, self.d), self.lr)
        self.sparse_update(self.F, caps.reshape(-1), dx[:, ww:].reshape(-1, self.k), self.lr)
        return loss

    def predict(self, words: np.ndarray, caps: np.ndarray) -> np.ndarray:
        """P(location) per window."""
        return _sigmoid(self.forward(words, caps)[3])

    def arrays(self) -> dict[str, np.ndarray]:
        """Current parameters, nerwin's names and layout."""
        return {k: getattr(self, k).copy() for k in bc.PARAM_NAMES}


def _sigmoid(s: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-s) without overflow, in s's dtype."""
    e = np.exp(-np.abs(s))
    return np.where(s >= 0, 1 / (1 + e), e / (1 + e)).astype(s.dtype, copy=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--windows", type=int, default=None, help="timed windows per batch size")
    parser.add_argument("--sparse", choices=sorted(SPARSE_VARIANTS), default="flat")
    args = parser.parse_args()
    setup = bc.standalone_setup()
    print(f"fused numpy, {bc.current_threads()} thread(s), sparse update '{args.sparse}'")
    for batch in args.batch:
        n = args.windows or (
            8_000 if batch == 1 else 64_000
        )  # batch 1 at lr 0.3 diverges near 11,300
        r = bc.time_training(
            FusedStep(setup.fresh_params(), sparse=args.sparse).step,
            setup,
            batch,
            n,
            warmup_windows=min(20 * batch, 2_000),
        )
        print(f"batch {batch:>4}: {r['windows_per_s']:>10,.0f} windows/s  ({n:,} windows)")


if __name__ == "__main__":
    main()
