"""More IoU-type box losses: SIoU, Wise-IoU (v1 and v3), MPDIoU, Shape-IoU and Powerful-IoU v2.

Same conventions as ``iou_family``: predicted and target boxes, xyxy, shape (N, 4), give the per-box loss (N,);
each loss has a ``_*_terms`` function returning ``(loss, {term: (N,)})`` whose parts add up to the loss, and
every ``terms["iou"]`` is exactly ``1 − IoU`` (``pair_geometry``'s IoU, ultralytics' eps placement), which the
IoU wrappers (``iou_wrappers``) rely on. Half-precision input is computed in float32, float64 stays float64.

Context (per-call inputs only the caller knows, keyword arguments next to the boxes): MPDIoU takes
``image_size`` and ``stride``. State (a value the caller keeps between calls, declared with the loss): WIoU v3 takes
``iou_mean``, the running mean of 1 − IoU, :data:`WIOU_V3_IOU_MEAN` (initial value and update rule,
:func:`updated_iou_mean`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..registry import BOX_LOSSES, LossState
from ..param import Param
from ._geometry import EPS, PairGeometry, aligned_iou, as_per_box, is_number, is_positive_number, pair_geometry

# Losses of the form "focusing factor × an IoU-type loss": L + IoU − IoU' (Inner-, Focaler-) is not how the
# wrappers' papers build on them, and can be negative when the factor is below 1 (see iou_wrappers).
FOCUSED_LOSSES = ("wiou", "wiou_v3", "piou_v2")

WIOU_V3_MOMENTUM = 1 - 0.5 ** (1 / 7000)  # the authors' IoU_Cal default, ≈ 9.90e-5 (half-life 7000 batches)
WIOU_IOU_MEAN_INIT = 1.0  # the authors' initial running mean of L_IoU
SHAPE_IOU_THETA = 4  # fixed in the paper and the authors' code


def _size_ratios(geo: PairGeometry, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """|w − w_gt| / max(w, w_gt) and |h − h_gt| / max(h, h_gt), each (N,); eps on the widths' max (the heights
    carry ultralytics' eps already). max(a, b) = (a + b + |a − b|)/2 reuses |a − b| (and its cheap gradient)."""
    width_error, height_error = (geo.pred_w - geo.target_w).abs(), (geo.pred_h - geo.target_h).abs()
    width_ratio = 2 * width_error / (geo.pred_w + geo.target_w + width_error + 2 * eps)
    height_ratio = 2 * height_error / (geo.pred_h + geo.target_h + height_error)
    return width_ratio, height_ratio


def _centre_offsets(geo: PairGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """(Δx, Δy) = target centre − predicted centre, each (N,); exactly 0 for identical boxes."""
    px1, py1, px2, py2 = geo.pred
    tx1, ty1, tx2, ty2 = geo.target
    return 0.5 * ((tx1 - px1) + (tx2 - px2)), 0.5 * ((ty1 - py1) + (ty2 - py2))


# --------------------------------------------------------------------------------------------------------
# SIoU
# --------------------------------------------------------------------------------------------------------

def _siou_terms(pred, target, theta=4.0, eps=EPS):
    geo = pair_geometry(pred, target, eps)
    dx, dy = _centre_offsets(geo)
    dx_squared, dy_squared = dx.pow(2), dy.pow(2)
    # Λ = 1 − 2 sin²(α − π/4) = sin 2α = 2 |Δx| |Δy| / σ² (σ = 0 gives Λ = 0, see siou_loss); −γ = Λ − 2
    minus_gamma = 2 * (dx * dy).abs() / (dx_squared + dy_squared).clamp(min=torch.finfo(dx.dtype).tiny) - 2
    rho_x = dx_squared / (geo.enclosing_w.pow(2) + eps)
    rho_y = dy_squared / (geo.enclosing_h.pow(2) + eps)
    half_distance = 1 - 0.5 * (torch.exp(minus_gamma * rho_x) + torch.exp(minus_gamma * rho_y))  # Δ/2
    omega_w, omega_h = _size_ratios(geo, eps)
    half_shape = 0.5 * ((1 - torch.exp(-omega_w)).pow(theta) + (1 - torch.exp(-omega_h)).pow(theta))  # Ω/2
    iou_term = 1.0 - geo.iou
    loss = iou_term + half_distance + half_shape
    return loss, {"iou": iou_term, "dist": half_distance, "shape": half_shape}


@BOX_LOSSES.register(
    "siou", terms=_siou_terms, iou_based=True, formula="1 − IoU + (Δ + Ω)/2, Δ = Σ (1 − e^{−(2 − Λ) ρ_t}), "
    "Λ = sin 2α, Ω = Σ (1 − e^{−ω_t})^θ",
    paper="Gevorgyan, SIoU Loss: More Powerful Learning for Bounding Box Regression, arXiv 2205.12740",
    params={"theta": Param(4.0, "exponent θ of the shape cost (paper: 4, range 2 to 6)", lambda t: t >= 1, ">= 1")})
def siou_loss(pred: torch.Tensor, target: torch.Tensor, theta: float = 4.0, eps: float = EPS) -> torch.Tensor:
    """SIoU loss, 1 − IoU + (Δ + Ω)/2, per box.

    - Angle cost Λ = 1 − 2 sin²(arcsin(x) − π/4), x = sin α, α the angle of the centre offset (Δx, Δy) to the
      x axis. 1 − 2 sin²(α − π/4) = cos(2α − π/2) = sin 2α = 2 |Δx| |Δy| / σ², σ² = Δx² + Δy², which is what
      is computed: no arcsin (its derivative is infinite at x = 1). sin 2α = sin(π − 2α), so taking the
      smaller of α and π/2 − α, as the paper and the authors' code do, gives the same value and gradient.
    - Distance cost Δ = Σ_{t=x,y} (1 − e^{−γ ρ_t}), γ = 2 − Λ, ρ_x = (Δx / c_w)², ρ_y = (Δy / c_h)², c_w, c_h
      the width and height of the smallest enclosing box (eps added to c_w², c_h², so that zero-size pairs
      give 0, not 0/0). Λ carries a gradient (it is not detached in the paper nor in the authors' code).
    - Shape cost Ω = Σ_{t=w,h} (1 − e^{−ω_t})^θ, ω_w = |w − w_gt| / max(w, w_gt), ω_h likewise; eps is added
      to max(w, w_gt) as ultralytics adds it to the heights, so width and height are treated alike.
    - Coincident centres (σ = 0): Λ is 0/0 there; Λ = 0 is used. The choice cannot matter: with σ = 0 both
      ρ_t are 0, so Δ = 0 whatever γ, ∂Δ/∂Λ = Σ ρ_t e^{−γ ρ_t} = 0 and ∂Δ/∂ρ_t = γ multiplies ∂ρ_t/∂box = 0.
      (The common implementation adds eps to Δx and Δy instead, which makes such pairs read α = 45°, Λ = 1.)

    Args:
        pred, target: (N, 4) boxes, xyxy.
        theta: θ >= 1 (paper: 4, "from 2 to 6"); below 1 the gradient of Ω is infinite at equal sides.

    Returns:
        (N,) loss.

    Reference: Gevorgyan, "SIoU Loss: More Powerful Learning for Bounding Box Regression", arXiv 2205.12740
    (2022).
    """
    return _siou_terms(pred, target, theta, eps)[0]


# --------------------------------------------------------------------------------------------------------
# Wise-IoU v1 and v3
# --------------------------------------------------------------------------------------------------------

def _wiou_parts(pred, target, eps):
    """Geometry and R_WIoU = exp(ρ² / (W_g² + H_g²)*), the enclosing box's squared diagonal detached."""
    geo = pair_geometry(pred, target, eps)
    dx, dy = _centre_offsets(geo)
    diagonal_squared = (geo.enclosing_w.pow(2) + geo.enclosing_h.pow(2) + eps).detach()
    return geo, torch.exp((dx.pow(2) + dy.pow(2)) / diagonal_squared)


def _wiou_terms(pred, target, eps=EPS):
    geo, distance_focus = _wiou_parts(pred, target, eps)
    iou_term = 1.0 - geo.iou
    loss = distance_focus * iou_term
    return loss, {"iou": iou_term, "dist": (distance_focus - 1) * iou_term}


@BOX_LOSSES.register(
    "wiou", terms=_wiou_terms, iou_based=True, formula="R_WIoU (1 − IoU), R_WIoU = exp(ρ² / (W_g² + H_g²)*)",
    paper="Tong et al., Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing Mechanism, arXiv 2301.10051")
def wiou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Wise-IoU v1 loss, R_WIoU · L_IoU, per box.

    R_WIoU = exp(((x − x_gt)² + (y − y_gt)²) / (W_g² + H_g²)*), with (x, y) the box centres and W_g, H_g the
    size of the smallest enclosing box; * marks what is detached: the denominator, as in the paper (to keep
    R_WIoU from producing gradients that hinder convergence) and the authors' code. eps is added to it.
    Since both centres lie in the enclosing box, 1 <= R_WIoU < e.

    Args:
        pred, target: (N, 4) boxes, xyxy.

    Returns:
        (N,) loss.

    Reference: Tong, Chen, Xu, Yu, "Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing Mechanism",
    arXiv 2301.10051 (2023).
    """
    return _wiou_terms(pred, target, eps)[0]


def updated_iou_mean(mean: Any, batch_mean: Any, momentum: float = WIOU_V3_MOMENTUM) -> Any:
    """The running mean of L_IoU after one batch: (1 − m) · mean + m · batch_mean (the authors' update).

    Args:
        mean: the current running mean (float or 0-dim tensor); the authors start from 1.0
            (``WIOU_IOU_MEAN_INIT``).
        batch_mean: this batch's mean of L_IoU = 1 − IoU over the boxes the loss is applied to; a tensor is
            detached.
        momentum: m in (0, 1] (``wiou_v3_momentum``; default 1 − 0.5^(1/7000) ≈ 9.9e-5).

    Returns:
        The updated mean, a float if both inputs are numbers, otherwise a detached tensor.
    """
    if not 0 < momentum <= 1:
        raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
    if isinstance(batch_mean, torch.Tensor):
        batch_mean = batch_mean.detach()
    if isinstance(mean, torch.Tensor):
        mean = mean.detach()
    return (1 - momentum) * mean + momentum * batch_mean


def _iou_losses(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_IoU = 1 − IoU per box, (N,): the statistic whose batch mean moves WIoU v3's running mean."""
    return 1.0 - aligned_iou(pred, target)


def _next_iou_mean(mean: Any, batch_mean: Any, momentum: float = WIOU_V3_MOMENTUM, **other_parameters: Any) -> Any:
    """:func:`updated_iou_mean` with the loss's configured momentum (its other hyper-parameters play no part)."""
    return updated_iou_mean(mean, batch_mean, momentum)


# WIoU v3's state: the caller's running mean of L_IoU, from the authors' 1, moved once per training batch
WIOU_V3_IOU_MEAN = LossState("iou_mean", WIOU_IOU_MEAN_INIT, statistic=_iou_losses, update=_next_iou_mean)


def _mean_tensor(iou_mean: Any, like: torch.Tensor) -> torch.Tensor:
    if isinstance(iou_mean, torch.Tensor):
        if iou_mean.numel() != 1:
            raise ValueError(f"iou_mean must be a number or a one-element tensor, got shape {tuple(iou_mean.shape)}")
        return iou_mean.detach().to(device=like.device, dtype=like.dtype).reshape(())
    if not (is_number(iou_mean) and iou_mean >= 0):
        raise ValueError(f"iou_mean must be a finite number >= 0 (a running mean of 1 − IoU), got {iou_mean!r}")
    return torch.tensor(float(iou_mean), device=like.device, dtype=like.dtype)


def _wiou_v3_terms(pred, target, alpha=1.9, delta=3.0, momentum=WIOU_V3_MOMENTUM, eps=EPS, *, iou_mean=None):
    geo, distance_focus = _wiou_parts(pred, target, eps)
    iou_term = 1.0 - geo.iou
    iou_loss = iou_term.detach()
    mean = iou_loss.mean() if iou_mean is None else _mean_tensor(iou_mean, iou_loss)
    outlier = iou_loss / mean.clamp(min=eps)  # β, detached
    focus = outlier / (delta * torch.pow(alpha, outlier - delta))  # r = β / (δ α^(β − δ)), no gradient
    v1 = distance_focus * iou_term
    loss = focus * v1
    return loss, {"iou": iou_term, "dist": (distance_focus - 1) * iou_term, "focus": (focus - 1) * v1}


@BOX_LOSSES.register(
    "wiou_v3", terms=_wiou_v3_terms, iou_based=True, state=(WIOU_V3_IOU_MEAN,),
    formula="r R_WIoU (1 − IoU), r = β / (δ α^(β−δ)), β = (1 − IoU)* / mean(1 − IoU)",
    paper="Tong et al., Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing Mechanism, arXiv 2301.10051",
    params={
        "alpha": Param(1.9, "α of the focusing r = β / (δ α^(β−δ)) (paper: 1.9)", lambda a: a > 1,
                       "> 1 (non-monotonic focusing)"),
        "delta": Param(3.0, "δ of the focusing: r = 1 at β = δ (paper: 3)", lambda d: d > 0, "> 0"),
        "momentum": Param(WIOU_V3_MOMENTUM, "momentum m of the caller's running mean of 1 − IoU (authors: "
                          "1 − 0.5^(1/7000))", lambda m: 0 < m <= 1, "in (0, 1]"),
    })
def wiou_v3_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.9, delta: float = 3.0,
                 momentum: float = WIOU_V3_MOMENTUM, eps: float = EPS, *, iou_mean: Any = None) -> torch.Tensor:
    """Wise-IoU v3 loss, r · L_WIoUv1, per box, with the non-monotonic focusing coefficient r.

    r = β / (δ α^(β − δ)), β = L_IoU* / mean(L_IoU) the outlier degree, L_IoU = 1 − IoU. β is detached, as in
    the authors' code, so r is a weight and carries no gradient. r is 1 at β = δ and largest at β = 1/ln α
    (1.31 at β = 1.56 for the defaults); ordinary-quality boxes get the largest gradient gain.

    Choices, made deliberately:
    - The running mean is the caller's state: pass it as ``iou_mean`` (float or 0-dim tensor). The
      authors update it once per training batch *before* computing β, mean ← (1 − m) mean + m · batch mean
      of L_IoU, starting from 1; :func:`updated_iou_mean` is that rule. With m ≈ 1e-4 updating after the
      call (from ``terms["iou"]``) is indistinguishable. The caller should not update it in validation, and
      should save it with the checkpoint (the authors keep it in the state dict).
    - ``iou_mean=None`` uses this call's detached mean of L_IoU (so β averages 1 over the call): a stateless
      fallback for tests and evaluation, not the paper's dynamic mean.
    - ``momentum`` is not used here; it is registered (``wiou_v3_momentum``) so that the caller's update
      uses the configured value.
    - The mean is clamped at eps before dividing.

    Args:
        pred, target: (N, 4) boxes, xyxy.
        alpha: α > 1 (paper: 1.9); α <= 1 would make r monotonic in β.
        delta: δ > 0 (paper: 3).
        momentum: m of the caller's running mean, see above.
        iou_mean: running mean of 1 − IoU, or None (see above).

    Returns:
        (N,) loss.

    Reference: Tong, Chen, Xu, Yu, "Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing Mechanism",
    arXiv 2301.10051 (2023). Momentum and initial mean from the authors' released code: 1 − 0.5^(1/7000) is
    the default of their ``IoU_Cal`` class (the usage code most forks copy); github.com/Instinct323/wiou's
    ``IouLoss`` derives m = 1 − 0.05^(1/(n t)) from n batches per epoch and t the epoch where mAP gains slow
    down, and the paper's run (n = 890, t = 34) gives 9.8995e-5 against 9.9016e-5. Both start the mean at 1.
    """
    return _wiou_v3_terms(pred, target, alpha, delta, momentum, eps, iou_mean=iou_mean)[0]


# --------------------------------------------------------------------------------------------------------
# MPDIoU
# --------------------------------------------------------------------------------------------------------

def _image_diagonal_squared(image_size: Any, stride: Any, like: torch.Tensor) -> torch.Tensor:
    """(W² + H²) of the input image in box units²: pixels² / stride²."""
    if isinstance(image_size, torch.Tensor):
        if image_size.numel() != 2:
            raise ValueError(f"image_size must hold (width, height), got shape {tuple(image_size.shape)}")
        size = image_size.detach().to(device=like.device, dtype=like.dtype).reshape(2)
    else:
        if len(image_size) != 2 or not all(is_positive_number(s) for s in image_size):
            raise ValueError(f"image_size must be (width, height) in pixels, two numbers > 0, got {image_size!r}")
        size = torch.tensor([float(s) for s in image_size], device=like.device, dtype=like.dtype)
    stride = as_per_box(stride, "stride", like)
    return size.pow(2).sum() / (stride * stride)


def _mpdiou_terms(pred, target, eps=EPS, *, image_size, stride=1.0):
    geo = pair_geometry(pred, target, eps)
    diagonal_squared = _image_diagonal_squared(image_size, stride, geo.iou)
    px1, py1, px2, py2 = geo.pred
    tx1, ty1, tx2, ty2 = geo.target
    top_left = ((px1 - tx1).pow(2) + (py1 - ty1).pow(2)) / diagonal_squared  # d1² / (w² + h²)
    bottom_right = ((px2 - tx2).pow(2) + (py2 - ty2).pow(2)) / diagonal_squared  # d2² / (w² + h²)
    iou_term = 1.0 - geo.iou
    loss = iou_term + top_left + bottom_right
    return loss, {"iou": iou_term, "corner_tl": top_left, "corner_br": bottom_right}


@BOX_LOSSES.register(
    "mpdiou", terms=_mpdiou_terms, iou_based=True, context=("image_size", "stride"),
    formula="1 − IoU + d1²/(w² + h²) + d2²/(w² + h²), d1, d2 corner distances, w, h the input image's size",
    paper="Ma, Xu, MPDIoU: A Loss for Efficient and Accurate Bounding Box Regression, arXiv 2307.07662")
def mpdiou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS, *, image_size: Any,
                stride: Any = 1.0) -> torch.Tensor:
    """MPDIoU loss, 1 − MPDIoU = 1 − IoU + d1²/(w² + h²) + d2²/(w² + h²), per box.

    d1, d2 are the distances between the top-left corners and between the bottom-right corners of the two
    boxes; w, h are the width and height of the **input image** (not of the enclosing box), so the corner
    penalties are bounded by 1 for boxes inside the image.

    Choices, made deliberately:
    - Units: the boxes are in box units and ``image_size`` in pixels, ``stride`` pixels per box unit; the
      image diagonal is converted to box units, (w² + h²) / stride². YOLO's criterion has boxes in grid units
      and passes each anchor's stride (an (N,) tensor); pixel boxes use stride 1. The loss is invariant when
      boxes and image_size scale together, and under (boxes / s, stride s) for any s.
    - Only w² + h² enters, so (width, height) and (height, width) give the same loss.

    Args:
        pred, target: (N, 4) boxes, xyxy.
        image_size: (width, height) of the input image in pixels: a length-2 sequence or tensor. Required.
        stride: pixels per box unit: a number, or a tensor of N values (any shape holding N, e.g. (N, 1)).

    Returns:
        (N,) loss.

    Reference: Ma, Xu, "MPDIoU: A Loss for Efficient and Accurate Bounding Box Regression", arXiv 2307.07662
    (2023).
    """
    return _mpdiou_terms(pred, target, eps, image_size=image_size, stride=stride)[0]


# --------------------------------------------------------------------------------------------------------
# Shape-IoU
# --------------------------------------------------------------------------------------------------------

def _shape_iou_terms(pred, target, scale=0.0, eps=EPS):
    geo = pair_geometry(pred, target, eps)
    dx, dy = _centre_offsets(geo)
    centre_x, centre_y = dx.pow(2), dy.pow(2)
    size_w, size_h = _size_ratios(geo, eps)
    if scale != 0:  # else ww = hh = 1
        # ww = 2 w_gt^s / (w_gt^s + h_gt^s) = 2 σ(s ln(w_gt / h_gt)): no overflow for any s or size
        ww = 2 * torch.sigmoid(scale * (geo.target_w.clamp(min=eps).log() - geo.target_h.clamp(min=eps).log()))
        hh = 2 - ww
        centre_x, centre_y, size_w, size_h = hh * centre_x, ww * centre_y, hh * size_w, ww * size_h
    distance = (centre_x + centre_y) / (geo.enclosing_w.pow(2) + geo.enclosing_h.pow(2) + eps)
    half_shape = 0.5 * ((1 - torch.exp(-size_w)).pow(SHAPE_IOU_THETA) + (1 - torch.exp(-size_h)).pow(SHAPE_IOU_THETA))
    iou_term = 1.0 - geo.iou
    loss = iou_term + distance + half_shape
    return loss, {"iou": iou_term, "dist": distance, "shape": half_shape}


@BOX_LOSSES.register(
    "shape_iou", terms=_shape_iou_terms, iou_based=True,
    formula="1 − IoU + (hh Δx² + ww Δy²)/c² + 0.5 Σ (1 − e^{−ω_t})⁴, ww = 2 w_gt^s / (w_gt^s + h_gt^s)",
    paper="Zhang, Zhang, Shape-IoU: More Accurate Metric considering Bounding Box Shape and Scale, "
          "arXiv 2312.17663",
    params={"scale": Param(0.0, "scale factor s of the GT-shape weights ww, hh (authors' code: 0)",
                           lambda s: s >= 0, ">= 0")})
def shape_iou_loss(pred: torch.Tensor, target: torch.Tensor, scale: float = 0.0, eps: float = EPS) -> torch.Tensor:
    """Shape-IoU loss, 1 − IoU + distance^shape + 0.5 Ω^shape, per box.

    ww = 2 w_gt^s / (w_gt^s + h_gt^s), hh = 2 h_gt^s / (w_gt^s + h_gt^s) (target box, s = ``scale``);
    distance^shape = hh (x_c − x_c^gt)² / c² + ww (y_c − y_c^gt)² / c², c the enclosing box's diagonal;
    Ω^shape = Σ_{t=w,h} (1 − e^{−ω_t})^4, ω_w = hh |w − w_gt| / max(w, w_gt), ω_h = ww |h − h_gt| / max(h, h_gt).
    For a wide target (w_gt > h_gt, s > 0) ww > 1 > hh: offsets and size errors across the short side weigh
    more, since they cost more IoU. Verified term for term against the authors' code (hh on the x terms, ww
    on the y terms), github.com/malagoutou/Shape-IoU.

    Choices, made deliberately:
    - ww is computed as 2 σ(s ln(w_gt/h_gt)) (equal to the formula; sides clamped at eps), which neither
      overflows for large s or sides nor has an infinite gradient at a zero side; s = 0 gives ww = hh = 1
      exactly, Shape-IoU's "scale-free" form.
    - s >= 0: a negative s would put the weight on the long side, against the paper's argument.
    - eps on c² (as DIoU) and on max(w, w_gt) (heights carry ultralytics' eps already).

    Args:
        pred, target: (N, 4) boxes, xyxy.
        scale: s >= 0, "related to the scale of the targets in the dataset" (authors' code default 0).

    Returns:
        (N,) loss.

    Reference: Zhang, Zhang, "Shape-IoU: More Accurate Metric considering Bounding Box Shape and Scale",
    arXiv 2312.17663 (2023).
    """
    return _shape_iou_terms(pred, target, scale, eps)[0]


# --------------------------------------------------------------------------------------------------------
# Powerful-IoU v2
# --------------------------------------------------------------------------------------------------------

def _piou_v2_terms(pred, target, lam=1.3, eps=EPS):
    geo = pair_geometry(pred, target, eps)
    px1, py1, px2, py2 = geo.pred
    tx1, ty1, tx2, ty2 = geo.target
    edges_w = ((px1 - tx1).abs() + (px2 - tx2).abs()) / (geo.target_w + eps)
    edges_h = ((py1 - ty1).abs() + (py2 - ty2).abs()) / geo.target_h  # the target height carries eps
    penalty_factor = (edges_w + edges_h) / 4  # P
    penalty = 1 - torch.exp(-penalty_factor.pow(2))  # 1 − e^{−P²}
    iou_term = 1.0 - geo.iou
    piou = iou_term + penalty  # L_PIoU
    quality = lam * torch.exp(-penalty_factor)  # λ q, q = e^{−P}
    attention = 3 * quality * torch.exp(-quality.pow(2))  # u(λq), u(x) = 3x e^{−x²}
    loss = attention * piou
    return loss, {"iou": iou_term, "penalty": penalty, "focus": (attention - 1) * piou}


@BOX_LOSSES.register(
    "piou_v2", terms=_piou_v2_terms, iou_based=True,
    formula="u(λ e^{−P}) (2 − IoU − e^{−P²}), u(x) = 3x e^{−x²}, P = Σ |Δ edges| / (4 · GT side)",
    paper="Liu et al., Powerful-IoU: More straightforward and faster bounding box regression loss with a "
          "nonmonotonic focusing mechanism, Neural Networks 2024, doi 10.1016/j.neunet.2023.11.041",
    params={"lam": Param(1.3, "λ of the attention u(λq) (authors' code: 1.3)", lambda lam: lam > 0, "> 0")})
def piou_v2_loss(pred: torch.Tensor, target: torch.Tensor, lam: float = 1.3, eps: float = EPS) -> torch.Tensor:
    """Powerful-IoU v2 loss, u(λq) · L_PIoU, per box.

    P = (|x1 − x1_gt| / w_gt + |x2 − x2_gt| / w_gt + |y1 − y1_gt| / h_gt + |y2 − y2_gt| / h_gt) / 4, the mean
    distance between corresponding edges relative to the target's size; L_PIoU = 1 − IoU + 1 − e^{−P²};
    q = e^{−P} ∈ (0, 1] (1 for identical boxes); u(x) = 3x e^{−x²}, so L_PIoUv2 = 3 λq e^{−(λq)²} L_PIoU.

    Choices, made deliberately:
    - The attention u(λq) is not detached: the authors' released code (github.com/fppccc/Powerful-IoU,
      YOLOv8/piou.py) differentiates through it, and the formula is written out there term for term as above.
    - eps is added to w_gt (ultralytics' eps is already on h_gt), so a zero-width target gives a large but
      finite P (the authors' code divides by w_gt alone).

    Args:
        pred, target: (N, 4) boxes, xyxy.
        lam: λ > 0 (paper: 1.3); u(λq) peaks at λq = 1/√2.

    Returns:
        (N,) loss.

    Reference: Liu, Wang, Li, Zhao, Zhao, Ma, "Powerful-IoU: More straightforward and faster bounding box
    regression loss with a nonmonotonic focusing mechanism", Neural Networks (2024),
    doi 10.1016/j.neunet.2023.11.041; formula checked against the authors' code.
    """
    return _piou_v2_terms(pred, target, lam, eps)[0]

