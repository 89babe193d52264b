"""The nerwin window classifier in PyTorch eager on the CPU: a widely used engine as a reference.

Same model, initial parameters, data order and batches as nerwin (see bench_common.prepare):
nn.Embedding(V, 50, sparse=True) and nn.Embedding(6, 5, sparse=True) for E and F,
nn.Linear(275, 300) (weight = W^T), ReLU, nn.Linear(300, 1) (weight = u^T),
binary_cross_entropy_with_logits (mean), optim.SGD(lr=0.3), which updates only the touched rows
of the sparse embedding gradients. A step is zero_grad, forward, loss.item(), backward, step
(nerwin's step also reads the loss every batch).

Needs torch (`pip install torch==2.13.0`, the `bench` extra). The thread count comes from
OMP_NUM_THREADS (bench_common sets it to 1 unless already set); torch.set_num_threads follows it.

usage: python scripts/bench_torch.py [--batch 1 32 256] [--windows N]
"""

from __future__ import annotations

import argparse

import bench_common as bc  # sets the BLAS thread variables before numpy/torch are imported
import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as tf
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

TORCH_MISSING = "torch is not installed: pip install torch==2.13.0 (the project's `bench` extra)"


def require_torch() -> None:
    """Exit with a clear message when torch is absent."""
    if torch is None:
        raise SystemExit(TORCH_MISSING)


if torch is not None:

    class WindowNet(nn.Module):
        """x = [E[w] | F[c]] -> Linear -> ReLU -> Linear -> logit."""

        def __init__(self, params: dict[str, np.ndarray]):
            super().__init__()
            (vocab, d), (n_caps, k) = params["E"].shape, params["F"].shape
            fan_in, hidden = params["W"].shape
            self.words = nn.Embedding(vocab, d, sparse=True)
            self.caps = nn.Embedding(n_caps, k, sparse=True)
            self.hidden = nn.Linear(fan_in, hidden)
            self.out = nn.Linear(hidden, 1)
            with torch.no_grad():
                self.words.weight.copy_(torch.from_numpy(params["E"]))
                self.caps.weight.copy_(torch.from_numpy(params["F"]))
                self.hidden.weight.copy_(torch.from_numpy(params["W"].T.copy()))
                self.hidden.bias.copy_(torch.from_numpy(params["b"]))
                self.out.weight.copy_(torch.from_numpy(params["u"].T.copy()))
                self.out.bias.copy_(torch.from_numpy(params["c"]))

        def forward(self, words: torch.Tensor, caps: torch.Tensor) -> torch.Tensor:
            n = words.shape[0]
            x = torch.cat([self.words(words).reshape(n, -1), self.caps(caps).reshape(n, -1)], dim=1)
            return self.out(torch.relu(self.hidden(x))).reshape(-1)


class TorchStep:
    """PyTorch eager SGD step with sparse embedding gradients."""

    name = "torch"

    def __init__(self, params: dict[str, np.ndarray], lr: float = bc.LR):
        require_torch()
        torch.set_num_threads(bc.current_threads())
        torch.manual_seed(0)
        self.net = WindowNet(
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
        )
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=lr)

    def step(self, words: np.ndarray, caps: np.ndarray, labels: np.ndarray) -> float:
        """zero_grad, forward, loss.item(), backward, SGD step; returns the batch loss."""
        self.optimizer.zero_grad(set_to_none=True)
        scores = self.net(torch.from_numpy(words), torch.from_numpy(caps))
        loss = tf.binary_cross_entropy_with_logits(scores, torch.from_numpy(labels))
        value = loss.item()
        loss.backward()
        self.optimizer.step()
        return value

    def predict(self, words: np.ndarray, caps: np.ndarray) -> np.ndarray:
        """P(location) per window, without autograd."""
        with torch.inference_mode():
            return torch.sigmoid(self.net(torch.from_numpy(words), torch.from_numpy(caps))).numpy()

    def arrays(self) -> dict[str, np.ndarray]:
        """Current parameters in nerwin's names and layout."""
        net = self.net
        with torch.no_grad():
            return {
                "E": net.words.weight.numpy().copy(),
                "F": net.caps.weight.numpy().copy(),
                "W": net.hidden.weight.numpy().T.copy(),
                "b": net.hidden.bias.numpy().copy(),
                "u": net.out.weight.numpy().T.copy(),
                "c": net.out.bias.numpy().copy(),
            }


def version() -> str:
    """torch's version, or 'absent'."""
    return torch.__version__ if torch is not None else "absent"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--windows", type=int, default=None, help="timed windows per batch size")
    args = parser.parse_args()
    require_torch()
    setup = bc.standalone_setup()
    print(f"PyTorch {torch.__version__} eager, {bc.current_threads()} thread(s)")
    for batch in args.batch:
        n = args.windows or (8_000 if batch == 1 else 64_000)
        r = bc.time_training(
            TorchStep(setup.fresh_params()).step,
            setup,
            batch,
            n,
            warmup_windows=min(20 * batch, 2_000),
        )
        print(f"batch {batch:>4}: {r['windows_per_s']:>10,.0f} windows/s  ({n:,} windows)")


if __name__ == "__main__":
    main()
