"""AP-loss: classification as ranking, 1 − AP over every (anchor, class) entry of the batch.

One scalar for the whole call, optimised with the paper's error-driven update (a custom autograd Function);
computed by sorting the P positives, binary search and cumulative sums in O((P + N) log P) for N negative
entries, never a P × N matrix, so it runs on a YOLO batch (16 images × 8,400 anchors × 80 classes ≈ 10⁷).
"""

from __future__ import annotations

import torch

from ..registry import CLS_LOSSES
from ..param import Param


def _step_sums(values: torch.Tensor, prefix: torch.Tensor, queries: torch.Tensor, delta: float) -> torch.Tensor:
    """Σ_k H(v_k − t) for each query t, H(x) = clamp(x / 2δ + 1/2, 0, 1); float64.

    values: (n,) ascending; prefix: (n + 1,) their cumulative sums from 0. Entries with v <= t − δ add 0,
    those with v >= t + δ add 1, those in between (v − t + δ) / 2δ, summed from the prefix sums. H is
    continuous, so which side of the window a value equal to t ± δ falls on does not matter.
    """
    low = torch.searchsorted(values, queries - delta, side="left")  # v < t − δ
    high = torch.searchsorted(values, queries + delta, side="right")  # v <= t + δ
    window = ((prefix[high] - prefix[low]) - (queries - delta) * (high - low)).clamp(min=0)  # clamp: rounding
    return (values.numel() - high) + window / (2 * delta)


def _ap_loss_and_grad(scores: torch.Tensor, positive: torch.Tensor, delta: float,
                      interpolate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """1 − AP and its error-driven gradient for flat float64 ``scores`` (n,) and boolean ``positive`` (n,).

    Only the P positives are sorted. Negatives scored at or below min(P) − δ are dropped first (their
    H(x_ij) is 0 for every positive). Each remaining negative j finds, by binary search, the positives it is
    fully above (s_i < s_j − δ: H(x_ij) = 1, indices < low_j) and those inside its window (indices in
    [low_j, high_j), H linear); its contributions to every positive's rank are then accumulated with
    difference arrays (index_add + cumsum) and its gradient read from prefix sums over the positives.
    O(P log P + N log P) time, O(P + N) memory; the 1-D index_add and cumsum are deterministic.
    """
    grad = torch.zeros_like(scores)
    num_positive = int(positive.sum())
    if num_positive in (0, scores.numel()):  # nothing to rank: AP-loss 0 (no positives) or AP = 1
        return scores.new_zeros(()), grad
    positive_scores, positive_order = scores[positive].sort()  # [P] ascending
    negative_index = (~positive).nonzero().squeeze(1)
    # a negative scored <= min(P) − δ has H(x_ij) = 0 for every i: no rank, no gradient (the code's shortcut)
    negative_index = negative_index[scores[negative_index] > positive_scores[0] - delta]
    negative_scores = scores[negative_index]  # [N'] the negatives that count
    zero = scores.new_zeros(1)
    two_delta = 2 * delta

    # rank⁺(i) = 1 + Σ_{k ∈ P, k ≠ i} H(x_ik): the sum over all of P includes i itself with H(0) = 1/2
    positive_prefix = torch.cat((zero, positive_scores.cumsum(0)))
    rank_positive = 0.5 + _step_sums(positive_scores, positive_prefix, positive_scores, delta)  # [P]

    # rank⁻(i) = Σ_{j ∈ N} H(x_ij), x_ij = s_j − s_i
    low = torch.searchsorted(positive_scores, negative_scores - delta, side="left")  # [N]
    high = torch.searchsorted(positive_scores, negative_scores + delta, side="right")  # [N]
    ones = torch.ones_like(negative_scores)
    shifted = negative_scores + delta  # H(x_ij) = (s_j + δ − s_i) / 2δ inside the window
    bins = scores.new_zeros(num_positive + 1)
    fully_above = bins.index_add(0, low, ones).flip(0).cumsum(0).flip(0)[1:]  # #{j: low_j > i}
    window_sum = bins.index_add(0, low, shifted).index_add_(0, high, -shifted).cumsum(0)[:-1]
    window_count = bins.index_add(0, low, ones).index_add_(0, high, -ones).cumsum(0)[:-1]
    window = (window_sum - positive_scores * window_count).clamp(min=0)  # clamp: rounding only
    rank_negative = fully_above + window / two_delta  # [P]

    error = rank_negative / (rank_positive + rank_negative)  # 1 − precision_i = Σ_j L_ij
    if interpolate:  # precision_i -> max precision over the positives scored <= s_i (higher recall)
        error = error.cummin(0).values
    loss = error.mean()

    # error-driven update: ∂/∂s_j = Σ_i L_ij / |P| for a negative j, −Σ_j L_ij / |P| for a positive i, with the
    # (interpolated) L_ij = H(x_ij) / rank_i · (1 − prec_interp_i) / (1 − prec_i) = H(x_ij) · error_i / rank⁻_i
    per_positive = torch.where(rank_negative > 0, error / rank_negative.clamp(min=torch.finfo(scores.dtype).tiny),
                               torch.zeros_like(error)) / num_positive  # [P]
    weight_prefix = torch.cat((zero, per_positive.cumsum(0)))
    moment_prefix = torch.cat((zero, (per_positive * positive_scores).cumsum(0)))
    window_grad = (shifted * (weight_prefix[high] - weight_prefix[low])
                   - (moment_prefix[high] - moment_prefix[low])).clamp(min=0)  # clamp: rounding only
    grad[negative_index] = weight_prefix[low] + window_grad / two_delta
    positive_grad = torch.empty_like(error)
    positive_grad[positive_order] = -error / num_positive
    grad[positive] = positive_grad
    return loss, grad


class _APLossFunction(torch.autograd.Function):
    """Forward: 1 − AP; backward: the error-driven update, precomputed in forward (not the derivative of 1 − AP)."""

    @staticmethod
    def forward(ctx, logits, targets, delta, interpolate):
        scores = logits.detach().reshape(-1).to(torch.float64)
        positive = (targets.detach() > 0).reshape(-1)
        loss, grad = _ap_loss_and_grad(scores, positive, delta, interpolate)
        out_dtype = torch.promote_types(logits.dtype, torch.float32)
        ctx.save_for_backward(grad.view(logits.shape).to(out_dtype))
        ctx.logits_dtype = logits.dtype
        return loss.to(out_dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return (grad * grad_output).to(ctx.logits_dtype), None, None, None


@CLS_LOSSES.register(
    "ap_loss", reduction="scalar", formula="1 − AP = (1/|P|) Σ_{i ∈ P} Σ_{j ∈ N} H(s_j − s_i) / rank(i)  (a scalar)",
    paper="Chen et al., Towards Accurate One-Stage Object Detection with AP-Loss, CVPR 2019, arXiv 1904.06373",
    params={"delta": Param(1.0, "half-width δ of the linear part of the step function H, in logits (released code: 1)",
                           lambda d: d > 0, "> 0"),
            "interpolate": Param(True, "use interpolated AP (precision = max over lower-scored positives), as the "
                                       "released code does")})
def ap_loss(logits: torch.Tensor, targets: torch.Tensor, delta: float = 1.0, interpolate: bool = True) -> torch.Tensor:
    """AP-loss over every entry of the call: a **scalar**, not an elementwise loss.

    All (anchor, class) entries of the batch form one ranking by their logit s. Positives P: entries with
    target > 0 (binary: the soft value is ignored); negatives N: the rest. With x_ij = s_j − s_i and the
    piecewise-linear step H(x) = 0 for x < −δ, x / 2δ + 1/2 on [−δ, δ], 1 for x > δ:
    rank⁺(i) = 1 + Σ_{k ∈ P, k ≠ i} H(x_ik), rank(i) = rank⁺(i) + Σ_{j ∈ N} H(x_ij), precision_i =
    rank⁺(i) / rank(i), L_ij = H(x_ij) / rank(i) for j ∈ N, and 1 − AP = (1/|P|) Σ_i Σ_j L_ij.

    The error-driven update replaces the gradient (the loss is piecewise constant in the limit δ → 0): with
    the target ranking L*_ij = 0, the update of x_ij is L_ij, which back-propagates through x_ij = s_j − s_i
    as ∂/∂s_j = +Σ_i L_ij / |P| for each negative j and ∂/∂s_i = −Σ_j L_ij / |P| for each positive i (so the
    gradients sum to zero). Signs and the 1/|P| normalisation are those of the paper and of the authors' code.

    Paper details and what is done here:
    - δ = 1, the released code's ``delta=1.0``.
    - Interpolated AP (default, as in the released code): positives are visited from the lowest
      score up; where a positive's precision is below the best precision of the positives scored below it,
      its precision is replaced by that maximum and its L_ij are rescaled so that Σ_j L_ij = 1 − that
      precision; the loss is 1 − the mean interpolated precision. ``interpolate=False`` gives plain AP.
    - Minibatch training: the paper ranks the whole minibatch rather than each image alone, and the
      released code ranks every anchor and class of all the batch's images together; here too, one
      ranking over all entries of the tensor passed. Like the code, negatives with L_ij = 0 for every i
      (scored <= min over P − δ) are skipped; its ignored anchors (label −1) have no YOLO counterpart.
    - Ties: tied scores have x = 0 and H(0) = 1/2, for positives and negatives alike.
    - Computed in float64 whatever the input dtype; the loss is returned in float32 at least.
    - Degenerate input: no positives gives loss 0 with a zero gradient (still attached to ``logits``); all
      entries positive gives AP = 1, loss 0, zero gradient.

    The YOLO criterion must use the value as it is (it is already normalised by |P|), not sum it and divide
    by the target-score sum as it does for elementwise losses.

    Args:
        logits: (...) classification logits, e.g. (B, A, C).
        targets: same shape; > 0 marks a positive.
        delta: half-width δ > 0 of H's linear part. interpolate: interpolated AP.

    Returns:
        () scalar loss in [0, 1).

    Reference: Chen et al., "Towards Accurate One-Stage Object Detection with AP-Loss", CVPR 2019, arXiv
    1904.06373; journal version "AP-Loss for Accurate One-Stage Object Detection", TPAMI 2020, arXiv
    2008.07294; code github.com/cccorn/AP-loss.
    """
    if logits.shape != targets.shape:
        raise ValueError(f"expected logits and targets of the same shape, got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    return _APLossFunction.apply(logits, targets, float(delta), bool(interpolate))
