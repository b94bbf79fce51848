"""Tests for the class-balanced wrapper, varifocal and quality focal losses (boxloss.losses.classification)
and AP-loss (boxloss.losses.ap_loss).

For every loss, each able to fail on its own: an independent recomputation (plain formulas here, the
class-balanced loss's released per-sample weighting, ultralytics' VarifocalLoss, a slow O(P·N) AP-loss
with the authors' interpolation loop); degenerate input (no positives, all positives, one class, extreme
logits) with finite values and gradients; the documented limit cases; bad hyper-parameters rejected by
``LossSpec.bind``.
"""

from __future__ import annotations

import math

import pytest
import torch
from ultralytics.utils.loss import VarifocalLoss

from boxloss import get_loss, get_spec, list_losses, options
from boxloss.errors import ConfigError
from boxloss.losses.ap_loss import ap_loss
from boxloss.losses.classification import bce, class_balanced_weights, focal, qfl, varifocal

NEW_LOSSES = ["class_balanced_bce", "class_balanced_focal", "varifocal", "qfl", "ap_loss"]
COUNTS = torch.tensor([500.0, 20.0, 3.0, 0.0, 80.0])  # boxes per class, one class absent


def _yolo_like(seed, shape=(4, 60, 5), positive_fraction=0.08, dtype=torch.float64):
    """Logits and YOLO-like targets: at most one positive class per anchor, soft value in (0, 1]."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, dtype=dtype) * 3
    targets = torch.zeros(shape, dtype=dtype)
    foreground = torch.rand(shape[:-1], generator=g) < positive_fraction * shape[-1]
    classes = torch.randint(0, shape[-1], shape[:-1], generator=g)
    values = 0.05 + 0.95 * torch.rand(shape[:-1], generator=g, dtype=dtype)
    targets.scatter_(-1, classes[..., None], (values * foreground)[..., None])
    return logits, targets


def _call(name, logits, targets, **params):
    context = {"class_counts": torch.ones(targets.shape[-1])} if name.startswith("class_balanced") else {}
    return get_spec(name, "cls").bind(**params)(logits, targets, **context)


# ---------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------

def test_registered_with_their_config_keys():
    assert set(NEW_LOSSES) <= set(list_losses("cls"))
    keys = options.all_options()
    for key in ("cls_class_balanced_beta", "cls_varifocal_alpha", "cls_varifocal_gamma", "cls_qfl_beta",
                "cls_ap_loss_delta", "cls_ap_loss_interpolate"):
        assert key in keys
    assert get_spec("class_balanced_focal", "cls").context == ("class_counts",)
    assert "class_balanced_varifocal" not in list_losses("cls")  # the wrapper applies to bce and focal only
    papers = " ".join(get_spec(name, "cls").paper for name in NEW_LOSSES)
    assert all(arxiv in papers for arxiv in ("1901.05555", "2008.13367", "2006.04388", "1904.06373"))


@pytest.mark.parametrize("name,params", [
    ("class_balanced_bce", {"beta": 1.0}), ("class_balanced_focal", {"beta": -0.1}),
    ("class_balanced_focal", {"beta": 0.99, "gamma": -1.0}), ("varifocal", {"alpha": -0.5}),
    ("varifocal", {"gamma": -1.0}), ("qfl", {"beta": -2.0}), ("ap_loss", {"delta": 0.0}),
    ("ap_loss", {"delta": -1.0}), ("ap_loss", {"interpolate": 1.0}), ("qfl", {"gamma": 2.0}),
])
def test_bad_hyper_parameters_are_rejected(name, params):
    with pytest.raises(ConfigError):
        get_spec(name, "cls").bind(**params)


def test_bad_beta_is_rejected_from_the_config_key():
    with pytest.raises(ConfigError, match="cls_class_balanced_beta"):
        options.check_value("cls_class_balanced_beta", 1.0)
    assert options.check_value("cls_class_balanced_beta", 0) == 0.0


# ---------------------------------------------------------------------------------------------------------
# Degenerate input, every new loss
# ---------------------------------------------------------------------------------------------------------

def _degenerate_inputs():
    logits, soft = _yolo_like(0)
    one_class_logits, one_class = _yolo_like(1, shape=(2, 40, 1), positive_fraction=0.2)
    extreme = torch.tensor([[[-200.0, 200.0, -40.0, 40.0, 0.0]]], dtype=torch.float64).expand(2, 3, 5).clone()
    extreme_targets = torch.tensor([[[1.0, 0.0, 0.7, 0.3, 1.0]]], dtype=torch.float64).expand(2, 3, 5).clone()
    return {
        "no positives": (logits, torch.zeros_like(soft)),
        "all positives": (logits, torch.ones_like(soft)),
        "one class": (one_class_logits, one_class),
        "extreme logits": (extreme, extreme_targets),
        "extreme logits float32": (extreme.float(), extreme_targets.float()),
    }


@pytest.mark.parametrize("case", list(_degenerate_inputs()))
@pytest.mark.parametrize("name", NEW_LOSSES)
def test_degenerate_input_gives_finite_values_and_gradients(name, case):
    logits, targets = _degenerate_inputs()[case]
    logits = logits.clone().requires_grad_()
    loss = _call(name, logits, targets)
    assert loss.shape == (() if name == "ap_loss" else logits.shape)
    assert torch.isfinite(loss).all()
    loss.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


# ---------------------------------------------------------------------------------------------------------
# Class-balanced loss
# ---------------------------------------------------------------------------------------------------------

def test_class_balanced_weights_by_hand():
    """β = 0.9, n = (1, 10, 100): (1 − β)/(1 − β^n) = 0.1/0.1 = 1, 0.1/(1 − 0.9¹⁰) = 0.153534,
    0.1/(1 − 0.9¹⁰⁰) = 0.100003; normalised to sum 3."""
    raw = torch.tensor([1.0, 0.1 / (1 - 0.9 ** 10), 0.1 / (1 - 0.9 ** 100)], dtype=torch.float64)
    weights = class_balanced_weights(torch.tensor([1, 10, 100]), 0.9)
    torch.testing.assert_close(weights, raw * 3 / raw.sum(), rtol=1e-12, atol=0)
    assert weights.sum().item() == pytest.approx(3)
    # β → 1: inverse frequency, w ∝ 1/n
    near_one = class_balanced_weights(torch.tensor([1, 10, 100]), 1 - 1e-9)
    torch.testing.assert_close(near_one / near_one[0], torch.tensor([1, 0.1, 0.01], dtype=torch.float64),
                               rtol=1e-6, atol=0)


def test_class_balanced_weights_with_an_absent_class():
    """n = 0: weight 1 (the mean), the present classes normalised among themselves; Σ w = C still."""
    weights = class_balanced_weights(COUNTS, 0.9999)
    assert torch.isfinite(weights).all() and weights[3] == 1
    assert weights.sum().item() == pytest.approx(5)
    present = torch.tensor([0, 1, 2, 4])
    torch.testing.assert_close(weights[present], class_balanced_weights(COUNTS[present], 0.9999))
    assert torch.equal(class_balanced_weights(torch.zeros(4), 0.99), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("base", ["bce", "focal"])
def test_class_balanced_is_the_papers_per_sample_weighting(base):
    """The released code (Cui et al., TF) weights a sample's C sigmoid terms by w of its label:
    ``tile(w) * one_hot → sum over classes → tile over classes``; background anchors (no label) weight 1."""
    logits, targets = _yolo_like(3)
    beta = 0.999
    effective = 1 - beta ** COUNTS.double()
    raw = torch.where(COUNTS > 0, (1 - beta) / effective.clamp(min=1e-300), torch.zeros(5, dtype=torch.float64))
    w = torch.where(COUNTS > 0, raw * 4 / raw.sum(), torch.ones(5, dtype=torch.float64))  # 4 present classes
    one_hot = (targets > 0).double()
    per_sample = (one_hot * w).sum(-1, keepdim=True).expand_as(logits)
    per_sample = torch.where(one_hot.sum(-1, keepdim=True) > 0, per_sample, torch.ones_like(per_sample))
    base_loss = bce(logits, targets) if base == "bce" else focal(logits, targets, alpha=-1.0)  # w replaces α
    got = get_loss(f"class_balanced_{base}", "cls")(logits, targets, beta=beta, class_counts=COUNTS)
    torch.testing.assert_close(got, per_sample * base_loss, rtol=1e-12, atol=0)


@pytest.mark.parametrize("base,params", [("bce", {}), ("focal", {}), ("focal", {"gamma": 0.0})])
def test_class_balanced_with_beta_zero_is_the_base_loss_exactly(base, params):
    """β = 0: w_c = 1/1 for every class, so the loss is BCE / focal without α_t bit for bit; with γ = 0 too the
    class-balanced focal loss is BCE."""
    logits, targets = _yolo_like(4)
    got = get_spec(f"class_balanced_{base}", "cls").bind(beta=0.0, **params)(logits, targets, class_counts=COUNTS)
    expected = bce(logits, targets) if base == "bce" else focal(logits, targets, alpha=-1.0, **params)
    assert torch.equal(got, expected)
    if params.get("gamma") == 0.0:
        assert torch.equal(got, bce(logits, targets))


def test_class_balanced_focal_replaces_alpha_as_the_paper_does():
    """Cui et al. 2019, eq. 8: CB_focal = −w_y Σ_i (1 − p_i^t)^γ log p_i^t, no α_t: focal's α is not a setting of
    class_balanced_focal, and the config key cls_focal_alpha cannot act on it."""
    from boxloss import options

    spec = get_spec("class_balanced_focal", "cls")
    assert set(spec.params) == {"gamma", "beta"} and "cls_focal_alpha" not in spec.keys.values()
    with pytest.raises(ConfigError, match="has no parameter 'alpha'"):
        spec.bind(alpha=0.25)
    assert "cls_focal_alpha" in options.unused_keys({"cls_loss": "class_balanced_focal"})
    assert "cls_focal_alpha" not in options.unused_keys({"cls_loss": "focal"})


def test_class_balanced_keeps_stale_positives_and_needs_counts():
    """A positive of a class counted 0 keeps weight 1 (not 0, not ∞); missing or mis-sized counts raise."""
    logits, targets = torch.zeros(1, 2, 3), torch.tensor([[[0.0, 0.0, 0.9], [0.0, 0.0, 0.0]]])
    loss = get_loss("class_balanced_bce", "cls")(logits, targets, beta=0.99, class_counts=torch.tensor([5, 7, 0]))
    assert torch.equal(loss, bce(logits, targets))
    with pytest.raises(ValueError, match="class_counts"):
        get_loss("class_balanced_bce", "cls")(logits, targets, beta=0.99)
    with pytest.raises(ValueError, match="classes"):
        get_loss("class_balanced_bce", "cls")(logits, targets, beta=0.99, class_counts=torch.ones(4))
    with pytest.raises(ValueError, match="class_counts"):
        get_loss("class_balanced_bce", "cls")(logits, targets, beta=0.99, class_counts=torch.tensor([1.0, -1, 2]))


def test_class_balanced_terms_add_up():
    logits, targets = _yolo_like(5)
    bound = get_spec("class_balanced_focal", "cls").bind(beta=0.99)
    loss, terms = bound.terms(logits, targets, class_counts=COUNTS)
    assert torch.equal(terms["total"], loss)


# ---------------------------------------------------------------------------------------------------------
# Varifocal loss
# ---------------------------------------------------------------------------------------------------------

def test_varifocal_is_the_formula():
    """q > 0: −q (q log p + (1 − q) log(1 − p)); q = 0: −α p^γ log(1 − p)."""
    logits, q = _yolo_like(6)
    p = logits.sigmoid()
    expected = torch.where(q > 0, -q * (q * p.log() + (1 - q) * (1 - p).log()), -0.75 * p ** 2 * (1 - p).log())
    torch.testing.assert_close(varifocal(logits, q), expected, rtol=1e-10, atol=1e-12)
    expected = torch.where(q > 0, -q * (q * p.log() + (1 - q) * (1 - p).log()), -0.5 * p ** 1.5 * (1 - p).log())
    torch.testing.assert_close(varifocal(logits, q, alpha=0.5, gamma=1.5), expected, rtol=1e-10, atol=1e-12)


def test_varifocal_hand_values():
    """logit 0 (p = 1/2): q = 0: 0.75 · 1/4 · ln 2; q = 1: ln 2; q = 1/2: 1/2 · ln 2 (BCE(1/2, 1/2) = ln 2)."""
    got = varifocal(torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64))
    expected = torch.tensor([0.1875, 1.0, 0.5], dtype=torch.float64) * math.log(2)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_varifocal_matches_ultralytics_values_and_gradients():
    """ultralytics' VarifocalLoss (an independent implementation, modulating factor not detached) reduces
    with .mean(1).sum(); with one anchor per image, (N, 1, C), that is the plain sum, and the gradient of the
    sum is the elementwise gradient."""
    logits, q = _yolo_like(7, shape=(300, 1, 4), dtype=torch.float32)  # VarifocalLoss computes in float32
    ours_input = logits.clone().requires_grad_()
    ours = varifocal(ours_input, q).sum()
    ours.backward()
    theirs_input = logits.clone().requires_grad_()
    theirs = VarifocalLoss()(theirs_input, q, (q > 0).to(q.dtype))
    theirs.backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours_input.grad, theirs_input.grad, rtol=1e-4, atol=1e-6)


def test_varifocal_limit_is_bce_on_hard_targets():
    """α = 1, γ = 0 and q ∈ {0, 1}: every weight is 1, the loss is BCE."""
    logits, q = _yolo_like(8)
    hard = (q > 0).to(q.dtype)
    torch.testing.assert_close(varifocal(logits, hard, alpha=1.0, gamma=0.0), bce(logits, hard), rtol=1e-15, atol=0)


def test_varifocal_and_qfl_detach_their_targets():
    logits, q = _yolo_like(9)
    q = q.clone().requires_grad_()
    for fn in (varifocal, qfl):
        logits_ = logits.clone().requires_grad_()
        fn(logits_, q).sum().backward()
        assert q.grad is None and logits_.grad is not None


# ---------------------------------------------------------------------------------------------------------
# Quality focal loss
# ---------------------------------------------------------------------------------------------------------

def test_qfl_is_the_formula():
    """−|y − σ|^β ((1 − y) log(1 − σ) + y log σ)."""
    logits, y = _yolo_like(10)
    y = torch.where(torch.rand(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype) < 0.1,
                    torch.rand(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype), y)  # dense soft y
    s = logits.sigmoid()
    for beta in (2.0, 1.0, 0.5):
        expected = -(y - s).abs() ** beta * ((1 - y) * (1 - s).log() + y * s.log())
        torch.testing.assert_close(qfl(logits, y, beta), expected, rtol=1e-10, atol=1e-12)


def test_qfl_hand_values_and_zero_at_the_target():
    """logit 0 (σ = 1/2): y = 1: 1/4 · ln 2; y = 0: 1/4 · ln 2; y = 1/2: 0 (σ = y)."""
    got = qfl(torch.zeros(3, dtype=torch.float64), torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor([0.25, 0.25, 0.0], dtype=torch.float64) * math.log(2),
                               rtol=1e-12, atol=1e-300)


def test_qfl_with_beta_zero_on_hard_targets_is_bce_exactly():
    logits, y = _yolo_like(11)
    hard = (y > 0).to(y.dtype)
    assert torch.equal(qfl(logits, hard, beta=0.0), bce(logits, hard))


def test_qfl_with_hard_targets_is_focal_without_alpha():
    """For y ∈ {0, 1}, |y − σ| = 1 − p_t: QFL is the focal loss with α disabled (γ = β)."""
    logits, y = _yolo_like(12)
    hard = (y > 0).to(y.dtype)
    torch.testing.assert_close(qfl(logits, hard, beta=2.0), focal(logits, hard, gamma=2.0, alpha=-1),
                               rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------------------------------------
# AP-loss
# ---------------------------------------------------------------------------------------------------------

def _step(x, delta):
    return (x / (2 * delta) + 0.5).clamp(0, 1)


def reference_ap_loss(logits, targets, delta=1.0, interpolate=True):
    """Slow and direct: the P × N matrix of H(x_ij), ranks by their definition, and the authors' loop for
    interpolated AP (positives from the lowest score up, tracking the best precision so far). Returns
    (1 − AP, error-driven gradient): −(1 − prec_i)/|P| for positives, Σ_i L_ij/|P| for negatives."""
    s = logits.detach().reshape(-1).double()
    positive = targets.reshape(-1) > 0
    grad = torch.zeros_like(s)
    pos, neg = s[positive], s[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return 0.0, grad
    heaviside = _step(neg[None, :] - pos[:, None], delta)  # [P, N] H(x_ij)
    rank_positive = torch.stack([1 + sum(_step(pos[k] - pos[i], delta) for k in range(len(pos)) if k != i)
                                 for i in range(len(pos))])
    rank = rank_positive + heaviside.sum(1)
    pairwise = heaviside / rank[:, None]  # L_ij
    precision = rank_positive / rank
    if interpolate:
        best = 0.0
        for i in sorted(range(len(pos)), key=lambda i: pos[i].item()):
            if best <= precision[i]:
                best = precision[i].item()
            else:
                pairwise[i] *= (1 - best) / (1 - precision[i])
                precision[i] = best
    grad[positive] = -(1 - precision) / len(pos)
    grad[~positive] = pairwise.sum(0) / len(pos)
    return 1 - precision.mean().item(), grad


AP_CASES = [(seed, delta, interpolate) for seed in range(8) for delta in (1.0, 0.25) for interpolate in (True, False)]


@pytest.mark.parametrize("seed,delta,interpolate", AP_CASES)
def test_ap_loss_matches_the_slow_reference(seed, delta, interpolate):
    logits, targets = _yolo_like(20 + seed, shape=(2, 40, 3), positive_fraction=0.1)
    if seed % 2:
        logits = (logits * 2).round() / 2  # many ties, among positives and across
    logits = logits.requires_grad_()
    loss = ap_loss(logits, targets, delta, interpolate)
    loss.backward()
    expected_loss, expected_grad = reference_ap_loss(logits, targets, delta, interpolate)
    assert loss.item() == pytest.approx(expected_loss, rel=1e-12, abs=1e-14)
    torch.testing.assert_close(logits.grad.reshape(-1), expected_grad, rtol=1e-10, atol=1e-14)
    assert abs(logits.grad.sum().item()) < 1e-12  # the update only moves scores relative to each other


def test_ap_loss_hand_values():
    """Scores (positive 2, negative 1.5, positive 0, negative −5), δ = 1: for s = 2, rank⁺ = 1 + H(−2) = 1,
    rank⁻ = H(−0.5) = 1/4, precision 4/5; for s = 0, rank⁺ = 1 + H(2) = 2, rank⁻ = H(1.5) + H(−5) = 1,
    precision 2/3. Plain AP = (4/5 + 2/3)/2, loss 4/15; interpolation changes nothing (2/3 is the lowest
    positive). Gradients: positives −(1/5)/2 and −(1/3)/2; the negative at 1.5 gets (H(−0.5)/(5/4) +
    H(1.5)/3)/2 = (1/5 + 1/3)/2, the one at −5 gets 0."""
    logits = torch.tensor([2.0, 1.5, 0.0, -5.0], dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([1.0, 0.0, 0.3, 0.0], dtype=torch.float64)
    loss = ap_loss(logits, targets)
    loss.backward()
    assert loss.item() == pytest.approx(4 / 15, rel=1e-14)
    torch.testing.assert_close(logits.grad, torch.tensor([-0.1, (1 / 5 + 1 / 3) / 2, -1 / 6, 0.0],
                                                         dtype=torch.float64), rtol=1e-14, atol=0)


def test_ap_loss_interpolation_by_hand():
    """Scores (negative 3, positive 2.5, positive 1, positive 0.9), δ = 0.01 (a near-hard step): the
    positives' precisions from the top are 1/2 (one negative above), 2/3, 3/4, rising down the list, so
    interpolation lifts the first two to 3/4: AP 3/4, loss 1/4 (plain AP: (1/2 + 2/3 + 3/4)/3)."""
    logits = torch.tensor([3.0, 2.5, 1.0, 0.9], dtype=torch.float64)
    targets = torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    assert ap_loss(logits, targets, 0.01).item() == pytest.approx(1 / 4, rel=1e-12)
    assert ap_loss(logits, targets, 0.01, False).item() == pytest.approx(1 - (1 / 2 + 2 / 3 + 3 / 4) / 3, rel=1e-12)


def test_ap_loss_is_zero_for_a_perfect_ranking():
    """Every positive above every negative by more than δ: H = 0 for all pairs, AP = 1, gradient 0."""
    logits = torch.tensor([5.0, 4.0, 1.0, 0.5, -3.0], requires_grad=True)
    targets = torch.tensor([1.0, 0.6, 0.0, 0.0, 0.0])
    loss = ap_loss(logits, targets)
    loss.backward()
    assert loss.item() == 0 and torch.equal(logits.grad, torch.zeros(5))


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_ap_loss_without_negatives_or_positives_is_a_connected_zero(fill):
    weight = torch.tensor(2.0, requires_grad=True)
    logits = torch.randn(2, 10, 3) * weight
    loss = ap_loss(logits, torch.full((2, 10, 3), fill))
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert weight.grad is not None and weight.grad.item() == 0


def test_ap_loss_gradient_flows_through_the_graph_and_dtypes():
    """The error-driven gradient reaches the parameters (chain rule after the Function); half input gives a
    float32 loss and a half gradient equal to the float64 one rounded."""
    logits, targets = _yolo_like(30, shape=(2, 30, 3), positive_fraction=0.1)
    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    ap_loss(logits * scale, targets).backward()
    direct = logits.clone().requires_grad_()
    ap_loss(direct, targets).backward()
    assert scale.grad.item() == pytest.approx((direct.grad * logits).sum().item(), rel=1e-12)
    half = logits.half().requires_grad_()
    loss = ap_loss(half, targets)
    loss.backward()
    assert loss.dtype == torch.float32 and half.grad.dtype == torch.float16
    reference = logits.half().double().requires_grad_()
    ap_loss(reference, targets).backward()
    torch.testing.assert_close(half.grad, reference.grad.half(), rtol=1e-3, atol=1e-6)


def test_ap_loss_runs_on_a_yolo_sized_batch():
    """2 images × 8,400 anchors × 80 classes, 1,500 positives: a P × N matrix would hold 2·10⁹ entries
    (16 GB in float64); the sorted computation is linear in memory. Checked against the statistic it must
    equal: the mean over positives of Σ_j L_ij equals the loss (the update conserves it)."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 8400, 80, generator=g) * 2 - 4
    targets = torch.zeros_like(logits)
    targets.view(-1)[torch.randperm(logits.numel(), generator=g)[:1500]] = 0.7
    logits.requires_grad_()
    loss = ap_loss(logits, targets)
    loss.backward()
    positive = targets > 0
    assert 0 < loss.item() < 1
    assert logits.grad[positive].sum().item() == pytest.approx(-loss.item(), rel=1e-5)
    assert logits.grad[~positive].sum().item() == pytest.approx(loss.item(), rel=1e-5)
    assert (logits.grad[positive] <= 0).all() and (logits.grad[~positive] >= 0).all()


def test_ap_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        ap_loss(torch.zeros(2, 3), torch.zeros(3, 2))


def test_ap_loss_update_sign_is_the_one_the_docs_state():
    """docs/losses.md: the "gradient" of x_ij = s_j − s_i is L_ij − L*_ij = L_ij (L* = 0), so ∂/∂s_j > 0 for a negative
    scored above a positive and ∂/∂s_i < 0 for that positive: descent pushes the negative down, the positive up."""
    from helpers import REPO

    text = " ".join((REPO / "docs" / "losses.md").read_text().split())
    assert "x_ij = s_j − s_i is L_ij − L*_ij = L_ij" in text
    logits = torch.tensor([[0.0, 3.0]], requires_grad=True)  # a positive at 0, a negative at 3 (ranked first)
    ap_loss(logits, torch.tensor([[1.0, 0.0]])).backward()
    positive_grad, negative_grad = logits.grad[0].tolist()
    assert negative_grad == pytest.approx(0.5) and positive_grad == pytest.approx(-0.5)  # L_ij = H(3) / rank(i) = 1/2
