"""Gaussian losses on rotated boxes: ProbIoU (ultralytics' OBB loss), KLD, GWD and KFIoU (mmrotate's).

Every function takes predicted and target boxes, xywhr, shape (N, 5) — centre, width, height, angle in radians —
and returns the per-box loss (N,). A rotated box becomes a 2-D Gaussian (see ``_rotated_geometry``), which makes the
loss smooth in the angle; the price is that a square's Gaussian is isotropic, so a square turned by 45° against
itself is, to every Gaussian loss, the same box (its exact IoU is 1/√2 ≈ 0.707).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..param import Param
from ..registry import BOX_LOSSES
from ._geometry import EPS, promote
from ._rotated_geometry import TargetFrame, check_rotated_boxes, covariance, target_frame

PROBIOU_FLOOR = 0.01  # ultralytics' RotatedBboxLoss.floor
MMROTATE_SIDE_RANGE = (1e-7, 1e7)  # mmrotate's xy_wh_r_2_xy_sigma clamps w and h to this range
GWD_TRANSFORMS = {"log1p": torch.log1p, "none": lambda distance: distance}  # f of mmrotate's GDLoss (fun=)
KFIOU_OVERLAP_TERMS = {  # mmrotate KFLoss's fun=: the overlap term from KFIoU (and its eps)
    "none": lambda kfiou, eps: 1 - kfiou,
    "ln": lambda kfiou, eps: -(kfiou + eps).log(),
    "exp": lambda kfiou, eps: (1 - kfiou).exp() - 1,
}
GWD_FUNS, KFIOU_FUNS = tuple(GWD_TRANSFORMS), tuple(KFIOU_OVERLAP_TERMS)


def _probiou_terms(pred, target, floor=PROBIOU_FLOOR, eps=EPS):
    """1 − ProbIoU, operation for operation ``ultralytics.utils.metrics.probiou(pred, target, floor=floor)``: every
    sum is recomputed where ultralytics recomputes it, so autograd accumulates the gradients in the same order."""
    check_rotated_boxes(pred, target)
    pred, target = promote(pred, target)
    x_p, y_p = pred[..., :2].split(1, dim=-1)  # [N, 1] each
    x_t, y_t = target[..., :2].split(1, dim=-1)
    a_p, b_p, c_p = covariance(pred, 12, floor)  # Σ = [[a, c], [c, b]], [N, 1] each
    a_t, b_t, c_t = covariance(target, 12, floor)
    # Bhattacharyya distance of the two Gaussians, Σ = (Σp + Σt)/2: the centre term (two parts) and the log-det term
    centre_term = (((a_p + a_t) * (y_p - y_t).pow(2) + (b_p + b_t) * (x_p - x_t).pow(2))
                   / ((a_p + a_t) * (b_p + b_t) - (c_p + c_t).pow(2) + eps)) * 0.25
    cross_term = (((c_p + c_t) * (x_t - x_p) * (y_p - y_t))
                  / ((a_p + a_t) * (b_p + b_t) - (c_p + c_t).pow(2) + eps)) * 0.5
    log_det_term = (((a_p + a_t) * (b_p + b_t) - (c_p + c_t).pow(2))
                    / (4 * ((a_p * b_p - c_p.pow(2)).clamp_(0) * (a_t * b_t - c_t.pow(2)).clamp_(0)).sqrt() + eps)
                    + eps).log() * 0.5
    bhattacharyya = (centre_term + cross_term + log_det_term).clamp(eps, 100.0)
    hellinger = (1.0 - (-bhattacharyya).exp() + eps).sqrt()
    probiou = 1 - hellinger
    loss = (1.0 - probiou).squeeze(-1)
    return loss, {"iou": loss}


@BOX_LOSSES.register(
    "probiou", terms=_probiou_terms, iou_based=True, boxes="xywhr",
    formula="1 − ProbIoU, ProbIoU = 1 − √(1 − e^{−B}), B the Bhattacharyya distance of N(μ, R diag(w²/12, h²/12) Rᵀ "
            "+ floor)",
    paper="Llerena et al., Gaussian Bounding Boxes and Probabilistic Intersection-over-Union for Object Detection, "
          "arXiv 2106.06072",
    params={"floor": Param(PROBIOU_FLOOR, "added to each variance w²/12, h²/12 (ultralytics: 0.01, bounds the "
                           "gradients of sub-stride boxes)", lambda f: f >= 0, ">= 0")})
def probiou_loss(pred: torch.Tensor, target: torch.Tensor, floor: float = PROBIOU_FLOOR,
                 eps: float = EPS) -> torch.Tensor:
    """ProbIoU loss, 1 − ProbIoU, per box: ultralytics' stock OBB box loss.

    Each box is the Gaussian N((cx, cy), Σ), Σ = R(θ) diag(w²/12 + floor, h²/12 + floor) R(θ)ᵀ (a uniform
    distribution over the box). B = ⅛ Δμᵀ Σ⁻¹ Δμ + ½ ln(det Σ / √(det Σp det Σt)) with Σ = (Σp + Σt)/2 is their
    Bhattacharyya distance, clamped to [eps, 100]; the Hellinger distance √(1 − e^{−B} + eps) is 1 − ProbIoU.

    Choices, made deliberately:
    - The arithmetic is ``ultralytics.utils.metrics.probiou(pred, target, floor=0.01)`` (8.4.190) operation for
      operation, as ``RotatedBboxLoss`` calls it (prediction first), so values and gradients are bit-identical
      (tested) and ``box_loss: probiou`` reproduces stock OBB training.
    - Because B >= eps and eps sits under the square root, identical boxes give 1 − ProbIoU = √(2 eps) ≈ 4.5e-4,
      not 0 — ultralytics' value, kept.
    - A Gaussian cannot tell a square's rotation: a square turned by 45° against itself scores ProbIoU ≈ 1.

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians).
        floor: added to each variance (ultralytics' ``RotatedBboxLoss.floor`` = 0.01).
        eps: ultralytics' 1e-7.

    Returns:
        (N,) loss in [0, 1].

    Reference: Llerena, Zeni, Kristen, Jung, "Gaussian Bounding Boxes and Probabilistic Intersection-over-Union for
    Object Detection", arXiv 2106.06072; ultralytics ``probiou`` (8.4.190).
    """
    return _probiou_terms(pred, target, floor, eps)[0]


def _half_sides(frame: TargetFrame) -> tuple[torch.Tensor, ...]:
    """(w_p/2, h_p/2, w_t/2, h_t/2) with the sides clamped to mmrotate's [1e-7, 1e7]: the standard deviations of the
    k = 4 Gaussians along their own axes (Σ = R diag(w²/4, h²/4) Rᵀ)."""
    low, high = MMROTATE_SIDE_RANGE
    return tuple(side.clamp(low, high) / 2 for side in (frame.pred_w, frame.pred_h, frame.target_w, frame.target_h))


def _pred_variances(frame: TargetFrame, pred_half_w: torch.Tensor, pred_half_h: torch.Tensor):
    """(a, b), (N,) each: the diagonal of Σp = [[a, c], [c, b]] in the target's frame (turned by φ = θp − θt). Against
    the target's diagonal Σt, the traces and determinants below need no more of Σp than this and |Σp|."""
    var_w, var_h = pred_half_w.pow(2), pred_half_h.pow(2)
    cos2, sin2 = frame.cos.pow(2), frame.sin.pow(2)
    return var_w * cos2 + var_h * sin2, var_w * sin2 + var_h * cos2


def _kld_terms(pred, target, tau=1.0):
    frame = target_frame(pred, target)
    pred_half_w, pred_half_h, target_half_w, target_half_h = _half_sides(frame)
    a, b = _pred_variances(frame, pred_half_w, pred_half_h)
    target_var_w, target_var_h = target_half_w.pow(2), target_half_h.pow(2)  # Σt = diag(var_w, var_h) here
    mahalanobis = frame.offset_x.pow(2) / target_var_w + frame.offset_y.pow(2) / target_var_h  # Δμᵀ Σt⁻¹ Δμ
    trace = a / target_var_w + b / target_var_h  # tr(Σt⁻¹ Σp)
    log_det_ratio = 2 * ((target_half_w / pred_half_w).log() + (target_half_h / pred_half_h).log())  # ln(|Σt|/|Σp|)
    divergence = (mahalanobis + trace + log_det_ratio - 2).clamp(min=1e-6)  # 2 KL(N_p ‖ N_t), mmrotate's clamp
    loss = 1 - 1 / (tau + divergence.log1p())
    return loss, {"kld": loss}


@BOX_LOSSES.register(
    "kld", terms=_kld_terms, boxes="xywhr",
    formula="1 − 1/(τ + ln(1 + D)), D = Δμᵀ Σt⁻¹ Δμ + tr(Σt⁻¹ Σp) + ln(|Σt|/|Σp|) − 2 (>= 1e-6), "
            "Σ = R diag(w²/4, h²/4) Rᵀ",
    paper="Yang et al., Learning High-Precision Bounding Box for Rotated Object Detection via Kullback-Leibler "
          "Divergence, NeurIPS 2021, arXiv 2106.01883",
    params={"tau": Param(1.0, "τ in 1 − 1/(τ + ln(1 + D)) (mmrotate GDLoss_v1: 1; the loss at identical boxes is "
                         "1 − 1/τ)", lambda t: t >= 1, ">= 1")})
def kld_loss(pred: torch.Tensor, target: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """KLD loss, 1 − 1/(τ + ln(1 + D)), per box: mmrotate's ``GDLoss_v1(loss_type="kld", fun="log1p", tau=1)``.

    Each box is N((cx, cy), Σ), Σ = R(θ) diag(w²/4, h²/4) R(θ)ᵀ. D = Δμᵀ Σt⁻¹ Δμ + tr(Σt⁻¹ Σp) + ln(|Σt| / |Σp|) − 2
    is twice the Kullback-Leibler divergence KL(N_p ‖ N_t), clamped at 1e-6; ln(1 + D) and 1 − 1/(τ + ·) make it a
    bounded loss in [0, 1) (at τ = 1).

    Choices, made deliberately:
    - As mmrotate: w and h clamped to [1e-7, 1e7] (a zero-size box gets no gradient through its size), D clamped
      at 1e-6 (identical boxes: 1 − 1/(1 + ln(1 + 1e-6)) ≈ 1e-6, and no gradient below the clamp).
    - Computed in the target's frame, where Σt is diagonal: Σt⁻¹ and the determinants are the sides' own
      (|Σ| = w²h²/16) rather than a 2 × 2 inverse, so there is no cancellation in float32; the value is the same.
    - Like every Gaussian loss, blind to a square's rotation (a square turned by 45° against itself: D = 0).

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians).
        tau: τ >= 1.

    Returns:
        (N,) loss in [1 − 1/τ, 1).

    Reference: Yang et al., "Learning High-Precision Bounding Box for Rotated Object Detection via Kullback-Leibler
    Divergence", NeurIPS 2021, arXiv 2106.01883; mmrotate
    ``models/losses/gaussian_dist_loss_v1.py`` (``kld_loss``).
    """
    return _kld_terms(pred, target, tau)[0]


def _check_fun(name: str, fun: str, funs: tuple[str, ...]) -> None:
    if fun not in funs:
        raise ValueError(f"{name} fun must be one of {funs}, got {fun!r}")


def _gwd_terms(pred, target, fun="log1p", tau=0.0, alpha=1.0, normalize=True, eps=EPS):
    _check_fun("gwd", fun, GWD_FUNS)
    frame = target_frame(pred, target)
    pred_half_w, pred_half_h, target_half_w, target_half_h = _half_sides(frame)
    # B² = tr Σp + tr Σt − 2 tr((Σp^½ Σt Σp^½)^½) = T − 2S with S² = cos²φ U² + sin²φ V² in the target's frame; written
    # (T² − 4S²)/(T + 2S), whose numerator is a sum of non-negative products: exactly 0 for identical boxes
    trace_sum = pred_half_w.pow(2) + pred_half_h.pow(2) + target_half_w.pow(2) + target_half_h.pow(2)  # T
    aligned = pred_half_w * target_half_w + pred_half_h * target_half_h  # U: S at φ = 0
    crossed = pred_half_h * target_half_w + pred_half_w * target_half_h  # V: S at φ = π/2
    aligned_gap = (pred_half_w - target_half_w).pow(2) + (pred_half_h - target_half_h).pow(2)  # T − 2U
    crossed_gap = (pred_half_h - target_half_w).pow(2) + (pred_half_w - target_half_h).pow(2)  # T − 2V
    cos2, sin2 = frame.cos.pow(2), frame.sin.pow(2)
    coupling = (cos2 * aligned.pow(2) + sin2 * crossed.pow(2)).sqrt()  # S
    shape = (cos2 * aligned_gap * (trace_sum + 2 * aligned) + sin2 * crossed_gap * (trace_sum + 2 * crossed)) \
        / (trace_sum + 2 * coupling)  # B², the Bures distance of the covariances
    distance_squared = frame.offset_x.pow(2) + frame.offset_y.pow(2) + alpha * alpha * shape  # W₂²
    if normalize:  # mmrotate: W₂ / (2 (|Σp| |Σt|)^⅛), the scale clamped at 1e-7
        scale = 2 * (pred_half_w * pred_half_h * target_half_w * target_half_h).sqrt().sqrt().clamp(min=1e-7)
        distance_squared = distance_squared / scale.pow(2)
    distance = distance_squared.clamp(min=eps * eps).sqrt()  # >= eps: √ has an infinite slope at 0
    transformed = GWD_TRANSFORMS[fun](distance)
    loss = 1 - 1 / (tau + transformed) if tau >= 1 else transformed
    return loss, {"gwd": loss}


@BOX_LOSSES.register(
    "gwd", terms=_gwd_terms, boxes="xywhr",
    formula="f(W₂ / (2 (|Σp| |Σt|)^⅛)), W₂² = ‖Δμ‖² + α² (tr Σp + tr Σt − 2 tr((Σp^½ Σt Σp^½)^½)), "
            "f = log1p; 1 − 1/(τ + f) for τ >= 1",
    paper="Yang et al., Rethinking Rotated Object Detection with Gaussian Wasserstein Distance Loss, ICML 2021, "
          "arXiv 2101.11952",
    params={
        "fun": Param("log1p", "f applied to the distance: log1p (mmrotate GDLoss default) or none",
                     lambda f: f in GWD_FUNS, "one of log1p, none", choices=GWD_FUNS),
        "tau": Param(0.0, "τ: for τ >= 1 the loss is 1 − 1/(τ + f); below 1, f itself (mmrotate GDLoss: 0)",
                     lambda t: t >= 0, ">= 0"),
        "alpha": Param(1.0, "α, weight of the shape term in W₂² (mmrotate: 1)", lambda a: a > 0, "> 0"),
        "normalize": Param(True, "divide W₂ by 2 (|Σp| |Σt|)^⅛ (mmrotate GDLoss: true), making it scale-free"),
    })
def gwd_loss(pred: torch.Tensor, target: torch.Tensor, fun: str = "log1p", tau: float = 0.0, alpha: float = 1.0,
             normalize: bool = True, eps: float = EPS) -> torch.Tensor:
    """GWD loss, f(W₂ / s) (or 1 − 1/(τ + f) for τ >= 1), per box: mmrotate's ``GDLoss(loss_type="gwd")`` defaults.

    Each box is N((cx, cy), Σ), Σ = R(θ) diag(w²/4, h²/4) R(θ)ᵀ. W₂² = ‖Δμ‖² + α² B², B² = tr Σp + tr Σt −
    2 tr((Σp^½ Σt Σp^½)^½), is the squared 2-Wasserstein distance of the two Gaussians; normalised by
    s = 2 (|Σp| |Σt|)^⅛ = (w_p h_p w_t h_t)^¼ it is scale-free, and f = log1p (τ = 0) makes it the loss.

    Choices, made deliberately:
    - The defaults are mmrotate's ``GDLoss`` (``gaussian_dist_loss.py``): normalised, f = log1p, τ = 0, α = 1; its
      ``fun="sqrt"`` is left out (√ of a distance has an infinite slope at identical boxes).
    - B² is computed in closed form in the target's frame, (T² − 4S²)/(T + 2S) with T² − 4S² = cos²φ (T − 2U)(T + 2U)
      + sin²φ (T − 2V)(T + 2V) (T = tr Σp + tr Σt, U and V: S at φ = 0 and π/2, φ the relative angle): equal to
      mmrotate's T − 2S, without its cancellation, which in float32 leaves ~1e-3 at identical boxes under the root.
    - As mmrotate, w and h are clamped to [1e-7, 1e7] and the scale at 1e-7; W₂/s is floored at eps before the
      square root (its derivative is infinite at identical boxes): the value moves by at most eps.
    - Blind to a square's rotation (B = 0 for a square turned against itself), like every Gaussian loss.

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians).
        fun: "log1p" or "none".
        tau: τ >= 0; below 1 it is not used (mmrotate's rule).
        alpha: α > 0, weight of the covariance term.
        normalize: divide by s.

    Returns:
        (N,) loss.

    Reference: Yang et al., "Rethinking Rotated Object Detection with Gaussian Wasserstein Distance Loss", ICML 2021,
    arXiv 2101.11952; mmrotate ``models/losses/gaussian_dist_loss.py`` (``gwd_loss``).
    """
    return _gwd_terms(pred, target, fun, tau, alpha, normalize, eps)[0]


def _kfiou_terms(pred, target, fun="none", beta=1 / 9, eps=1e-6):
    _check_fun("kfiou", fun, KFIOU_FUNS)
    frame = target_frame(pred, target)
    pred_half_w, pred_half_h, target_half_w, target_half_h = _half_sides(frame)
    a, b = _pred_variances(frame, pred_half_w, pred_half_h)
    target_var_w, target_var_h = target_half_w.pow(2), target_half_h.pow(2)
    # |Σp + Σt| = |Σp| + a σt_h² + b σt_w² + |Σt| in the target's frame: a sum of positive terms
    sum_det = (pred_half_w * pred_half_h).pow(2) + a * target_var_h + b * target_var_w + target_var_w * target_var_h
    pred_volume = 4 * pred_half_w * pred_half_h  # 4 √|Σp| = w h
    target_volume = 4 * target_half_w * target_half_h
    # Σ∩ = Σp − Σp (Σp + Σt)⁻¹ Σp = Σp (Σp + Σt)⁻¹ Σt: |Σ∩| = |Σp| |Σt| / |Σp + Σt|
    overlap_volume = 4 * pred_half_w * pred_half_h * target_half_w * target_half_h / sum_det.sqrt()
    kfiou = overlap_volume / (pred_volume + target_volume - overlap_volume + eps)
    overlap = KFIOU_OVERLAP_TERMS[fun](kfiou, eps)
    offsets = torch.stack((frame.offset_x / (2 * target_half_w), frame.offset_y / (2 * target_half_h)), -1)
    centre = F.smooth_l1_loss(offsets, torch.zeros_like(offsets), reduction="none", beta=beta).sum(-1)
    return centre + overlap, {"kfiou": overlap, "centre": centre}


@BOX_LOSSES.register(
    "kfiou", terms=_kfiou_terms, boxes="xywhr",
    formula="smooth-L1_β(Δμ in the target's frame / (w_t, h_t)) + (1 − KFIoU), KFIoU = V∩ / (Vp + Vt − V∩), "
            "V = 4√|Σ|, Σ∩ = Σp − Σp (Σp + Σt)⁻¹ Σp",
    paper="Yang et al., The KFIoU Loss for Rotated Object Detection, ICLR 2023, arXiv 2201.12558",
    params={
        "fun": Param("none", "the overlap term: none (1 − KFIoU), ln (−ln KFIoU) or exp (e^{1 − KFIoU} − 1) "
                     "(mmrotate KFLoss: none)", lambda f: f in KFIOU_FUNS, "one of none, ln, exp",
                     choices=KFIOU_FUNS),
        "beta": Param(1 / 9, "β of the centre term's smooth L1 (mmrotate: 1/9)", lambda b: b > 0, "> 0"),
    })
def kfiou_loss(pred: torch.Tensor, target: torch.Tensor, fun: str = "none", beta: float = 1 / 9,
               eps: float = 1e-6) -> torch.Tensor:
    """KFIoU loss, centre term + (1 − KFIoU), per box: mmrotate's ``KFLoss`` with the paper's centre term.

    Each box is N((cx, cy), Σ), Σ = R(θ) diag(w²/4, h²/4) R(θ)ᵀ, with "volume" V = 4√|Σ| (= w h). The Kalman-filter
    overlap Σ∩ = Σp − Σp (Σp + Σt)⁻¹ Σp gives KFIoU = V∩ / (Vp + Vt − V∩ + eps). The centre term is the smooth L1
    (β = 1/9) of the prediction's centre offset in the target's frame divided by the target's width and height.

    Choices, made deliberately:
    - KFIoU is at most 1/3 (identical boxes: Σ∩ = Σ/2, V∩ = V/2), as in mmrotate and the paper: the loss is 2/3 at
      identical boxes (fun = none), not 0; it is not rescaled.
    - The centre term is the issue's and the paper's: the offset in the target's frame over (w_t, h_t), zero where
      the centres coincide. (mmrotate's ``kfiou_loss`` takes it from the encoded regression deltas, which a
      per-box (pred, target) loss does not have.)
    - |Σ∩| = |Σp| |Σt| / |Σp + Σt| (the same matrix identity), with |Σp + Σt| written in the target's frame as a sum
      of positive terms: no cancellation, so no NaN to replace by 0 as mmrotate does.
    - mmrotate clamps the total at 0: both terms are non-negative here (KFIoU <= 1/3), so the clamp is left out and
      the terms add up to the loss. w and h are clamped to [1e-7, 1e7] as in mmrotate (also in the centre term).

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians).
        fun: "none", "ln" or "exp": the overlap term 1 − KFIoU, −ln(KFIoU + eps) or e^{1 − KFIoU} − 1.
        beta: β > 0 of the smooth L1.
        eps: mmrotate's 1e-6.

    Returns:
        (N,) loss.

    Reference: Yang et al., "The KFIoU Loss for Rotated Object Detection", ICLR 2023, arXiv 2201.12558; mmrotate
    ``models/losses/kf_iou_loss.py``.
    """
    return _kfiou_terms(pred, target, fun, beta, eps)[0]
