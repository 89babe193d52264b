"""nerwin's autodiff engine: a small reverse-mode engine over numpy arrays, usable on its own.

It holds the graph core (`tensor`: Tensor, Function, no_grad, backward), row-sparse gradients
(`sparse`), the ops (`ops`, which also attaches the Tensor operators; `embedding` for table
lookups; `loss` for the fused sigmoid cross-entropy; `activations`), numeric gradient checks
(`gradcheck` and the op table `opcases`) and BLAS thread limits (`blas`). It imports nothing
else of nerwin, so the rest of nerwin builds on it and never the other way round.
"""

from nerwin.engine.activations import ACTIVATIONS, activation
from nerwin.engine.embedding import gather, gather_concat
from nerwin.engine.loss import sigmoid_bce, stable_sigmoid
from nerwin.engine.ops import affine, concat, maximum  # importing ops attaches Tensor's operators
from nerwin.engine.sparse import RowSparseGrad
from nerwin.engine.tensor import Function, Tensor, is_grad_enabled, no_grad

__all__ = [
    "ACTIVATIONS",
    "Function",
    "RowSparseGrad",
    "Tensor",
    "activation",
    "affine",
    "concat",
    "gather",
    "gather_concat",
    "is_grad_enabled",
    "maximum",
    "no_grad",
    "sigmoid_bce",
    "stable_sigmoid",
]
