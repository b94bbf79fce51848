"""Tests for SIoU, WIoU v1/v3, MPDIoU, Shape-IoU, PIoU v2 (boxloss.losses.iou_variants), NWD (nwd) and the
Inner-, Focaler- and Alpha- wrappers (iou_wrappers).

Evidence, each able to fail on its own:
1. an independent float64 recomputation of every loss, and of every wrapped loss, from the papers' equations,
   written per box in plain Python ``math`` (no project helpers, no eps);
2. the wrappers' identity cases (ratio = 1, [d, u] = [0, 1], power = 1) give back the wrapped loss exactly,
   and are the formulas' limits;
3. the context and state the caller supplies: WIoU v3's running mean (explicit versus None, the update rule),
   MPDIoU's image size and stride (scale invariance), NWD's stride (C in box units is C / stride);
4. bad hyper-parameters are rejected through ``get_spec(name).bind`` (ConfigError naming the config key);
5. float64 gradcheck with non-default parameters and for α-CIoU's detached α.
The hand-derived values, the default-parameter gradchecks and the contract for these losses are in
test_losses.py, which covers every name in ``list_losses()``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from boxloss import aligned_iou, get_loss, get_spec, list_losses
from boxloss.errors import ConfigError
from boxloss.losses import diou_loss, updated_iou_mean, wiou_loss, wiou_v3_loss
from boxloss.losses.iou_variants import FOCUSED_LOSSES, WIOU_IOU_MEAN_INIT, WIOU_V3_MOMENTUM
from boxloss.losses.iou_wrappers import ALPHA_BASES
from boxloss.registry import BOX_LOSSES

from test_losses import EPS, _boxes, _generic_pairs, _NumericOfFrozen, _wiou_diagonal_frozen, random_boxes


# ---------------------------------------------------------------------------------------------------------
# 1. The papers' equations, per box, in plain Python
# ---------------------------------------------------------------------------------------------------------

def _geometry(p, t):
    """Per-pair quantities from the definitions (floats): sizes, IoU, enclosing box, centre offset."""
    x1, y1, x2, y2 = p
    gx1, gy1, gx2, gy2 = t
    w, h, w_gt, h_gt = x2 - x1, y2 - y1, gx2 - gx1, gy2 - gy1
    inter = max(0.0, min(x2, gx2) - max(x1, gx1)) * max(0.0, min(y2, gy2) - max(y1, gy1))
    union = w * h + w_gt * h_gt - inter
    cw, ch = max(x2, gx2) - min(x1, gx1), max(y2, gy2) - min(y1, gy1)
    dx, dy = (gx1 + gx2 - x1 - x2) / 2, (gy1 + gy2 - y1 - y2) / 2
    return SimpleNamespace(w=w, h=h, w_gt=w_gt, h_gt=h_gt, iou=inter / union, union=union, cw=cw, ch=ch, dx=dx,
                           dy=dy, c2=cw**2 + ch**2, rho2=dx**2 + dy**2)


def _iou_parts(p, t):
    """(IoU, [penalty terms]) of IoU, GIoU, DIoU, CIoU and EIoU, for the Alpha- recomputation."""
    g = _geometry(p, t)
    encl = max(0.0, (g.cw * g.ch - g.union) / (g.cw * g.ch))  # >= 0; max: rounding for nested boxes
    v = 4 / math.pi**2 * (math.atan(g.w_gt / g.h_gt) - math.atan(g.w / g.h)) ** 2
    alpha = v / (1 - g.iou + v)
    return {"iou": [], "giou": [encl], "diou": [g.rho2 / g.c2], "ciou": [g.rho2 / g.c2, alpha * v],
            "eiou": [g.rho2 / g.c2, (g.w - g.w_gt) ** 2 / g.cw**2, (g.h - g.h_gt) ** 2 / g.ch**2]}, g.iou


def siou_reference(p, t, theta=4.0):
    """Gevorgyan 2022: Λ through arcsin with x = c_h/σ as written (no choice of the smaller angle)."""
    g = _geometry(p, t)
    sigma = math.hypot(g.dx, g.dy)
    x = abs(g.dy) / sigma  # c_h / σ, c_h = max(b_cy) − min(b_cy)
    angle = 1 - 2 * math.sin(math.asin(x) - math.pi / 4) ** 2
    gamma = 2 - angle
    distance = sum(1 - math.exp(-gamma * rho) for rho in ((g.dx / g.cw) ** 2, (g.dy / g.ch) ** 2))
    omegas = (abs(g.w - g.w_gt) / max(g.w, g.w_gt), abs(g.h - g.h_gt) / max(g.h, g.h_gt))
    shape = sum((1 - math.exp(-omega)) ** theta for omega in omegas)
    return 1 - g.iou + (distance + shape) / 2


def wiou_reference(p, t):
    """Tong et al. 2023, WIoU v1: exp(ρ² / (W_g² + H_g²)) · (1 − IoU)."""
    g = _geometry(p, t)
    return math.exp(g.rho2 / g.c2) * (1 - g.iou)


def wiou_v3_references(preds, targets, alpha=1.9, delta=3.0, iou_mean=None):
    """WIoU v3: r · L_WIoUv1, r = β / (δ α^(β − δ)), β = L_IoU / mean (mean over the boxes if None)."""
    iou_losses = [1 - _geometry(p, t).iou for p, t in zip(preds, targets)]
    mean = sum(iou_losses) / len(iou_losses) if iou_mean is None else iou_mean
    betas = [loss / mean for loss in iou_losses]
    return [beta / (delta * alpha ** (beta - delta)) * wiou_reference(p, t)
            for beta, p, t in zip(betas, preds, targets)]


def mpdiou_reference(p, t, image_size, stride):
    """Ma & Xu 2023, on the boxes in pixels (box units × stride); w, h the image's size."""
    p, t = [c * stride for c in p], [c * stride for c in t]
    iou = _geometry(p, t).iou
    d1, d2 = (p[0] - t[0]) ** 2 + (p[1] - t[1]) ** 2, (p[2] - t[2]) ** 2 + (p[3] - t[3]) ** 2
    diagonal = image_size[0] ** 2 + image_size[1] ** 2
    return 1 - (iou - d1 / diagonal - d2 / diagonal)


def shape_iou_reference(p, t, scale=0.0):
    """Zhang & Zhang 2023: ww, hh from the target, hh on the x terms, ww on the y terms."""
    g = _geometry(p, t)
    ww = 2 * g.w_gt**scale / (g.w_gt**scale + g.h_gt**scale)
    hh = 2 * g.h_gt**scale / (g.w_gt**scale + g.h_gt**scale)
    distance = hh * g.dx**2 / g.c2 + ww * g.dy**2 / g.c2
    omega_w = hh * abs(g.w - g.w_gt) / max(g.w, g.w_gt)
    omega_h = ww * abs(g.h - g.h_gt) / max(g.h, g.h_gt)
    shape = (1 - math.exp(-omega_w)) ** 4 + (1 - math.exp(-omega_h)) ** 4
    return 1 - g.iou + distance + 0.5 * shape


def piou_v2_reference(p, t, lam=1.3):
    """Liu et al. 2024: P over corresponding edges, L_PIoU = 1 − IoU + 1 − e^{−P²}, u(λq) L_PIoU."""
    g = _geometry(p, t)
    penalty_factor = (abs(p[0] - t[0]) / g.w_gt + abs(p[2] - t[2]) / g.w_gt + abs(p[1] - t[1]) / g.h_gt
                      + abs(p[3] - t[3]) / g.h_gt) / 4
    piou = 1 - g.iou + 1 - math.exp(-penalty_factor**2)
    x = lam * math.exp(-penalty_factor)
    return 3 * x * math.exp(-x**2) * piou


def nwd_reference(p, t, constant=12.8, stride=1.0):
    """Wang et al. 2021, on the boxes in pixels: 1 − exp(−W₂ / C)."""
    p, t = [c * stride for c in p], [c * stride for c in t]
    gaussian = lambda b: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]) / 2, (b[3] - b[1]) / 2)  # noqa: E731
    wasserstein = math.sqrt(sum((a - b) ** 2 for a, b in zip(gaussian(p), gaussian(t))))
    return 1 - math.exp(-wasserstein / constant)


def inner_iou_reference(p, t, ratio):
    """Zhang, Xu, Zhang 2023: IoU of the auxiliary boxes, centre ± ratio · size / 2."""
    def auxiliary(b):
        cx, cy, w, h = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]
        return cx - ratio * w / 2, cy - ratio * h / 2, cx + ratio * w / 2, cy + ratio * h / 2

    return _geometry(auxiliary(p), auxiliary(t)).iou


def _image_mpdiou(p, t):
    return mpdiou_reference(p, t, IMAGE_SIZE, STRIDE)


IMAGE_SIZE, STRIDE = (640.0, 480.0), 8.0
# Every loss the Inner- and Focaler- wrappers apply to, recomputed per box (kwargs: the context our call needs).
ADDITIVE_REFERENCES = {
    "iou": lambda p, t: 1 - _geometry(p, t).iou,
    "giou": lambda p, t: 1 - _geometry(p, t).iou + _iou_parts(p, t)[0]["giou"][0],
    "diou": lambda p, t: 1 - _geometry(p, t).iou + sum(_iou_parts(p, t)[0]["diou"]),
    "ciou": lambda p, t: 1 - _geometry(p, t).iou + sum(_iou_parts(p, t)[0]["ciou"]),
    "eiou": lambda p, t: 1 - _geometry(p, t).iou + sum(_iou_parts(p, t)[0]["eiou"]),
    "siou": siou_reference,
    "mpdiou": _image_mpdiou,
    "shape_iou": shape_iou_reference,
}
CONTEXT = {"mpdiou": {"image_size": IMAGE_SIZE, "stride": STRIDE}}
WRAPPER_PARAMS = {"inner": {"ratio": 1.2}, "focaler": {"d": 0.05, "u": 0.9}, "alpha": {"power": 2.5}}


def _wrapped_reference(prefix, base, p, t):
    params = WRAPPER_PARAMS[prefix]
    if prefix == "alpha":
        parts, iou = _iou_parts(p, t)
        return 1 - iou ** params["power"] + sum(term ** params["power"] for term in parts[base])
    value, iou = ADDITIVE_REFERENCES[base](p, t), _geometry(p, t).iou
    if prefix == "inner":
        return value + iou - inner_iou_reference(p, t, params["ratio"])
    d, u = params["d"], params["u"]
    return value + iou - min(1.0, max(0.0, (iou - d) / (u - d)))


@pytest.fixture(scope="module")
def paper_boxes():
    """Seeded float64 pairs, a quarter disjoint; no pair with coincident centres (SIoU's σ = 0)."""
    pred, target = random_boxes(300, seed=11, dtype=torch.float64)
    return pred, target


def _tolerance(pred, target):
    """Where eps sits (heights, unions, c², max(w, w_gt)) moves each term by a few eps / (smallest side) and
    the focusing factors (<= e · 1.31) scale that: 10 eps / min side bounds it (the largest seen is ~1 eps / min
    side); float64 rounding is far below."""
    sides = torch.cat((pred[:, 2:] - pred[:, :2], target[:, 2:] - target[:, :2]))
    return 10 * EPS / min(sides.min().item(), 1.0)


def _rows(boxes):
    return boxes.tolist()


BASE_CASES = {  # name: (our kwargs, reference per box (p, t) -> value)
    "siou": ({}, siou_reference),
    "siou[theta=2]": ({"theta": 2.0}, lambda p, t: siou_reference(p, t, 2.0)),
    "wiou": ({}, wiou_reference),
    "mpdiou": ({"image_size": IMAGE_SIZE, "stride": STRIDE}, _image_mpdiou),
    "shape_iou": ({}, shape_iou_reference),
    "shape_iou[scale=1.5]": ({"scale": 1.5}, lambda p, t: shape_iou_reference(p, t, 1.5)),
    "piou_v2": ({}, piou_v2_reference),
    "piou_v2[lam=1]": ({"lam": 1.0}, lambda p, t: piou_v2_reference(p, t, 1.0)),
    "nwd": ({}, nwd_reference),
    "nwd[stride=8]": ({"stride": 8.0}, lambda p, t: nwd_reference(p, t, 12.8, 8.0)),
}


@pytest.mark.parametrize("case", BASE_CASES)
def test_matches_the_papers_equations(paper_boxes, case):
    pred, target = paper_boxes
    kwargs, reference = BASE_CASES[case]
    expected = torch.tensor([reference(p, t) for p, t in zip(_rows(pred), _rows(target))], dtype=torch.float64)
    loss = get_loss(case.split("[")[0])(pred, target, **kwargs)
    torch.testing.assert_close(loss, expected, rtol=0, atol=_tolerance(pred, target))


@pytest.mark.parametrize("iou_mean", [None, 0.7])
def test_wiou_v3_matches_the_papers_equations(paper_boxes, iou_mean):
    pred, target = paper_boxes
    expected = torch.tensor(wiou_v3_references(_rows(pred), _rows(target), iou_mean=iou_mean), dtype=torch.float64)
    torch.testing.assert_close(wiou_v3_loss(pred, target, iou_mean=iou_mean), expected, rtol=0,
                               atol=_tolerance(pred, target))
    expected = wiou_v3_references(_rows(pred), _rows(target), alpha=1.5, delta=2.0, iou_mean=iou_mean)
    torch.testing.assert_close(wiou_v3_loss(pred, target, 1.5, 2.0, iou_mean=iou_mean),
                               torch.tensor(expected, dtype=torch.float64), rtol=0, atol=_tolerance(pred, target))


def test_mpdiou_with_per_box_strides_matches_the_paper(paper_boxes):
    pred, target = paper_boxes
    strides = torch.tensor([8.0, 16.0, 32.0], dtype=torch.float64).repeat(100)
    expected = [mpdiou_reference(p, t, IMAGE_SIZE, s) for p, t, s in zip(_rows(pred), _rows(target), strides.tolist())]
    loss = get_loss("mpdiou")(pred, target, image_size=IMAGE_SIZE, stride=strides)
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64), rtol=0,
                               atol=_tolerance(pred, target))


WRAPPED = sorted(name for name in list_losses(boxes="xyxy") if get_spec(name).wraps)  # rotated: test_losses_rotated


def test_the_wrappers_apply_to_the_losses_their_papers_define():
    """Inner- and Focaler-: the losses of the form 1 − IoU + penalties (not NWD, the L1 losses, Focal-EIoU nor the
    focused WIoU, WIoU v3, PIoU v2); Alpha-: IoU, GIoU, DIoU, CIoU (the paper) and EIoU."""
    expected = {f"{prefix}_{base}" for prefix in ("inner", "focaler") for base in ADDITIVE_REFERENCES}
    expected |= {f"alpha_{base}" for base in ("iou", "giou", "diou", "ciou", "eiou")}
    assert set(WRAPPED) == expected
    assert set(ALPHA_BASES) == {"iou", "giou", "diou", "ciou", "eiou"}
    assert not any(name.endswith(focused) and name != focused for name in list_losses() for focused in FOCUSED_LOSSES)


@pytest.mark.parametrize("name", WRAPPED)
def test_wrapped_losses_match_the_papers_equations(paper_boxes, name):
    pred, target = paper_boxes
    base = get_spec(name).wraps
    prefix = name[:-len(base) - 1]
    expected = [_wrapped_reference(prefix, base, p, t) for p, t in zip(_rows(pred), _rows(target))]
    loss = get_loss(name)(pred, target, **WRAPPER_PARAMS[prefix], **CONTEXT.get(base, {}))
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64), rtol=0,
                               atol=_tolerance(pred, target))


# ---------------------------------------------------------------------------------------------------------
# 2. The wrappers' identity cases
# ---------------------------------------------------------------------------------------------------------

IDENTITY = {"inner": {"ratio": 1.0}, "focaler": {"d": 0.0, "u": 1.0}, "alpha": {"power": 1.0}}
NEAR_IDENTITY = {"inner": {"ratio": 1 + 1e-9}, "focaler": {"d": 1e-9, "u": 1 - 1e-9}, "alpha": {"power": 1 + 1e-9}}


def _prefix(name):
    return name[:-len(get_spec(name).wraps) - 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", WRAPPED)
def test_wrapper_identity_gives_back_the_wrapped_loss_exactly(name, dtype):
    base = get_spec(name).wraps
    context = CONTEXT.get(base, {})
    pred, target = random_boxes(500, seed=12, dtype=dtype)
    wrapped_pred, base_pred = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    wrapped = get_loss(name)(wrapped_pred, target, **IDENTITY[_prefix(name)], **context)
    plain = get_loss(base)(base_pred, target, **context)
    assert torch.equal(wrapped, plain)
    upstream = torch.rand(len(pred), generator=torch.Generator().manual_seed(13), dtype=dtype)
    wrapped.backward(upstream)
    plain.backward(upstream)
    # the identity adds a zero whose gradient (∂IoU − ∂IoU') cancels up to the order of accumulation
    torch.testing.assert_close(wrapped_pred.grad, base_pred.grad, rtol=1e-5 if dtype == torch.float32 else 1e-12,
                               atol=1e-6 if dtype == torch.float32 else 1e-14)


@pytest.mark.parametrize("name", WRAPPED)
def test_wrapper_identity_is_the_formulas_limit(name):
    """Just off the identity the formula itself (not a shortcut) runs, and lands within 1e-7 of the wrapped loss."""
    base = get_spec(name).wraps
    context = CONTEXT.get(base, {})
    pred, target = random_boxes(500, seed=14, dtype=torch.float64)
    near = get_loss(name)(pred, target, **NEAR_IDENTITY[_prefix(name)], **context)
    torch.testing.assert_close(near, get_loss(base)(pred, target, **context), rtol=0, atol=1e-7)
    assert not torch.equal(near, get_loss(base)(pred, target, **context))


def test_iou_term_of_every_iou_type_loss_is_one_minus_iou():
    """The wrappers read IoU from ``terms["iou"]``: for every registered IoU-type loss it is 1 − IoU, bit for bit."""
    pred, target = random_boxes(200, seed=15)
    names = [name for name in list_losses(boxes="xyxy") if get_spec(name).iou_based and not get_spec(name).wraps]
    assert {"iou", "ciou", "siou", "wiou", "wiou_v3", "mpdiou", "shape_iou", "piou_v2"} <= set(names)
    for name in names:
        context = {"image_size": IMAGE_SIZE, "stride": STRIDE, "iou_mean": 0.5}
        context = {key: value for key, value in context.items() if key in get_spec(name).context}
        _, terms = get_spec(name).bind().terms(pred, target, **context)
        assert torch.equal(terms["iou"], 1.0 - aligned_iou(pred, target)), name


NEW_LOSSES = ["siou", "wiou", "wiou_v3", "mpdiou", "shape_iou", "piou_v2", "nwd", *WRAPPED]


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_terms_add_up_to_the_loss(name):
    pred, target = random_boxes(200, seed=16, dtype=torch.float64)
    context = {"image_size": IMAGE_SIZE, "stride": STRIDE, "iou_mean": 0.5}
    context = {key: value for key, value in context.items() if key in get_spec(name).context}
    loss, terms = get_spec(name).bind().terms(pred, target, **context)
    torch.testing.assert_close(sum(terms.values()), loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss, get_loss(name)(pred, target, **context), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------
# 3. Context and state the caller supplies
# ---------------------------------------------------------------------------------------------------------

def test_wiou_v3_explicit_iou_mean_versus_none():
    pred, target = random_boxes(300, seed=17, dtype=torch.float64)
    iou_loss = 1 - aligned_iou(pred, target)
    stateless = wiou_v3_loss(pred, target)
    # None is the call's own detached mean: passing that mean explicitly (as a tensor) is the same computation
    assert torch.equal(wiou_v3_loss(pred, target, iou_mean=iou_loss.mean()), stateless)
    torch.testing.assert_close(wiou_v3_loss(pred, target, iou_mean=iou_loss.mean().item()), stateless, rtol=1e-14,
                               atol=0)
    # another mean changes only r = β/(δ α^(β−δ)), β = (1 − IoU)/mean
    for mean in (0.2, 1.0, torch.tensor(0.6, dtype=torch.float64)):
        beta = iou_loss / float(mean)
        expected = beta / (3.0 * 1.9 ** (beta - 3.0)) * wiou_loss(pred, target)
        torch.testing.assert_close(wiou_v3_loss(pred, target, iou_mean=mean), expected, rtol=1e-12, atol=0)
    assert not torch.allclose(wiou_v3_loss(pred, target, iou_mean=0.2), stateless)


def test_wiou_v3_focusing_is_a_constant_weight():
    """β is detached: with the mean fixed, the gradient is r · ∂L_WIoUv1 (r from the same boxes)."""
    pred, target = random_boxes(100, seed=18, dtype=torch.float64)
    v3_pred, v1_pred = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    wiou_v3_loss(v3_pred, target, iou_mean=0.4).sum().backward()
    beta = (1 - aligned_iou(pred, target)) / 0.4
    focus = beta / (3.0 * 1.9 ** (beta - 3.0))
    wiou_loss(v1_pred, target).backward(focus)
    torch.testing.assert_close(v3_pred.grad, v1_pred.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.5", torch.tensor([0.5, 0.5])])
def test_wiou_v3_rejects_a_bad_iou_mean(bad):
    pred, target = random_boxes(4, seed=19)
    with pytest.raises(ValueError, match="iou_mean"):
        wiou_v3_loss(pred, target, iou_mean=bad)


def test_updated_iou_mean_is_the_authors_running_mean():
    assert WIOU_V3_MOMENTUM == 1 - 0.5 ** (1 / 7000) == get_spec("wiou_v3").params["momentum"].default
    assert WIOU_IOU_MEAN_INIT == 1.0
    assert updated_iou_mean(1.0, 0.4, 0.25) == pytest.approx(0.75 * 1.0 + 0.25 * 0.4, abs=1e-15)
    # the default momentum halves the distance to a constant batch mean every 7000 batches
    mean = WIOU_IOU_MEAN_INIT
    for _ in range(7000):
        mean = updated_iou_mean(mean, 0.2)
    assert isinstance(mean, float) and mean == pytest.approx(0.2 + 0.5 * (1.0 - 0.2), abs=1e-9)
    # tensors: detached, same rule
    batch = torch.tensor(0.3, requires_grad=True)
    updated = updated_iou_mean(torch.tensor(0.9), batch * 1, 0.5)
    assert not updated.requires_grad and updated.item() == pytest.approx(0.6)
    for momentum in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="momentum"):
            updated_iou_mean(1.0, 0.5, momentum)


def test_mpdiou_is_scale_invariant_when_boxes_image_and_stride_scale_together():
    pred, target = random_boxes(300, seed=20, dtype=torch.float64)
    image = (640.0, 480.0)
    loss = get_loss("mpdiou")(pred, target, image_size=image, stride=8.0)
    # the whole picture scaled by k (boxes and image), the stride unchanged
    for k in (0.25, 3.7):
        scaled = get_loss("mpdiou")(pred * k, target * k, image_size=(image[0] * k, image[1] * k), stride=8.0)
        # IoU's eps (on heights and union) is not scale invariant: its effect bounds the difference
        torch.testing.assert_close(scaled, loss, rtol=0, atol=_tolerance(pred * min(k, 1), target * min(k, 1)))
    # the same pixel boxes in other units: boxes / s with s pixels per unit
    for s in (1.0, 8.0, 32.0):
        grid = get_loss("mpdiou")(pred * 8.0 / s, target * 8.0 / s, image_size=image, stride=s)
        torch.testing.assert_close(grid, loss, rtol=0, atol=_tolerance(pred * 8.0 / 32.0, target * 8.0 / 32.0))
    # per-box strides: a tensor of N, of shape (N, 1), or one value
    strides = torch.full((300,), 8.0, dtype=torch.float64)
    for stride in (strides, strides.unsqueeze(1), torch.tensor(8.0), torch.tensor([8.0])):
        assert torch.equal(get_loss("mpdiou")(pred, target, image_size=image, stride=stride), loss)
    # only w² + h² enters: (height, width) gives the same loss; a tensor image size too
    assert torch.equal(get_loss("mpdiou")(pred, target, image_size=image[::-1], stride=8.0), loss)
    assert torch.equal(get_loss("mpdiou")(pred, target, image_size=torch.tensor(image), stride=8.0), loss)


def test_mpdiou_needs_a_valid_image_size_and_stride():
    pred, target = random_boxes(5, seed=21)
    with pytest.raises(TypeError, match="image_size"):
        get_loss("mpdiou")(pred, target)
    for bad in ((640,), (640, 0), (640, -1), (640, 480, 3), torch.tensor([640.0, 480.0, 1.0])):
        with pytest.raises(ValueError, match="image_size"):
            get_loss("mpdiou")(pred, target, image_size=bad)
    for bad in (0.0, -8.0, float("nan"), torch.ones(3)):
        with pytest.raises(ValueError, match="stride"):
            get_loss("mpdiou")(pred, target, image_size=(640, 640), stride=bad)


def test_nwd_constant_is_in_pixels_and_stride_converts_it():
    pred, target = random_boxes(300, seed=22, dtype=torch.float64)
    nwd = get_loss("nwd")
    # C in box units is C / stride
    torch.testing.assert_close(nwd(pred, target, stride=8.0), nwd(pred, target, constant=12.8 / 8.0), rtol=1e-14,
                               atol=0)
    # the same pixel boxes in grid units of stride s, with that stride: the pixel loss
    pixels = nwd(pred * 8.0, target * 8.0)
    for s in (4.0, 8.0, 32.0):
        torch.testing.assert_close(nwd(pred * 8.0 / s, target * 8.0 / s, stride=s), pixels, rtol=1e-12, atol=0)
    # per-box strides
    strides = torch.tensor([8.0, 16.0, 32.0], dtype=torch.float64).repeat(100)
    expected = torch.stack([nwd(pred[i:i + 1], target[i:i + 1], stride=float(s)) for i, s in enumerate(strides)])
    torch.testing.assert_close(nwd(pred, target, stride=strides), expected.squeeze(1), rtol=1e-14, atol=0)
    torch.testing.assert_close(nwd(pred, target, stride=strides.unsqueeze(1)), expected.squeeze(1), rtol=1e-14,
                               atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nwd_at_identical_boxes_is_zero_with_a_finite_gradient(dtype):
    boxes = _boxes([[1, 2, 5, 7], [0, 0, 0, 0], [3, 3, 3, 9]], dtype=dtype, requires_grad=True)
    loss = get_loss("nwd")(boxes, boxes.detach().clone(), stride=8.0)
    loss.sum().backward()
    assert (loss.abs() < 1e-6).all()
    assert torch.isfinite(boxes.grad).all() and (boxes.grad == 0).all()


def test_siou_angle_cost_takes_either_angle_and_coincident_centres_are_finite():
    """sin 2α = sin 2(π/2 − α): offsets (1, 3) and (3, 1) of equal squares cost the same; with coincident centres
    SIoU is 1 − IoU + Ω/2 and its gradient finite."""
    square = [0.0, 0.0, 2.0, 2.0]
    a = get_loss("siou")(_boxes([square]), _boxes([[1, 3, 3, 5]]))
    b = get_loss("siou")(_boxes([square]), _boxes([[3, 1, 5, 3]]))
    assert a.item() == pytest.approx(b.item(), abs=1e-15)
    pred = _boxes([[0, 0, 4, 2]], requires_grad=True)  # centre (2, 1), as the target's
    target = _boxes([[1, -1, 3, 3]])
    loss = get_loss("siou")(pred, target)
    loss.sum().backward()
    omega = (1 - math.exp(-2 / 4)) ** 4 + (1 - math.exp(-2 / 4)) ** 4  # |4 − 2|/4 and |2 − 4|/4
    assert loss.item() == pytest.approx(1 - 4 / 12 + omega / 2, abs=1e-6)  # IoU = 4 / (8 + 8 − 4)
    assert torch.isfinite(pred.grad).all()


# ---------------------------------------------------------------------------------------------------------
# 4. Bad hyper-parameters are rejected
# ---------------------------------------------------------------------------------------------------------

BAD_PARAMS = [
    ("siou", {"theta": 0.5}, "siou_theta"),
    ("wiou_v3", {"alpha": 0.0}, "wiou_v3_alpha"),
    ("wiou_v3", {"alpha": 1.0}, "wiou_v3_alpha"),
    ("wiou_v3", {"delta": 0.0}, "wiou_v3_delta"),
    ("wiou_v3", {"momentum": 0.0}, "wiou_v3_momentum"),
    ("wiou_v3", {"momentum": 1.5}, "wiou_v3_momentum"),
    ("shape_iou", {"scale": -1.0}, "shape_iou_scale"),
    ("piou_v2", {"lam": 0.0}, "piou_v2_lam"),
    ("nwd", {"constant": 0.0}, "nwd_constant"),
    ("nwd", {"constant": float("inf")}, "nwd_constant"),
    ("inner_ciou", {"ratio": 0.0}, "inner_ratio"),
    ("inner_siou", {"ratio": 2.0}, "inner_ratio"),
    ("focaler_ciou", {"d": -0.1}, "focaler_d"),
    ("focaler_ciou", {"d": 1.0}, "focaler_d"),
    ("focaler_giou", {"u": 0.0}, "focaler_u"),
    ("focaler_giou", {"u": 1.1}, "focaler_u"),
    ("alpha_ciou", {"power": 0.0}, "alpha_power"),
    ("alpha_iou", {"power": "3"}, "alpha_power"),
]


@pytest.mark.parametrize("name, params, key", BAD_PARAMS, ids=[f"{n}-{k}" for n, _, k in BAD_PARAMS])
def test_bind_rejects_bad_hyper_parameters(name, params, key):
    with pytest.raises(ConfigError, match=key):
        get_spec(name).bind(**params)


def test_registered_defaults_and_config_keys():
    assert BOX_LOSSES.options()["wiou_v3_alpha"].default == 1.9
    assert BOX_LOSSES.options()["wiou_v3_delta"].default == 3.0
    assert BOX_LOSSES.options()["siou_theta"].default == 4.0
    assert BOX_LOSSES.options()["shape_iou_scale"].default == 0.0
    assert BOX_LOSSES.options()["piou_v2_lam"].default == 1.3
    assert BOX_LOSSES.options()["nwd_constant"].default == 12.8
    assert BOX_LOSSES.options()["inner_ratio"].default == 0.7
    assert (BOX_LOSSES.options()["focaler_d"].default, BOX_LOSSES.options()["focaler_u"].default) == (0.0, 0.95)
    assert BOX_LOSSES.options()["alpha_power"].default == 3.0
    assert get_spec("wiou_v3").context == ("iou_mean",)
    assert get_spec("mpdiou").context == ("image_size", "stride") == get_spec("focaler_mpdiou").context
    assert get_spec("nwd").context == ("stride",) and not get_spec("nwd").iou_based
    bound = get_spec("inner_ciou").bind_options({"inner_ratio": 1.25})
    assert bound.kwargs == {"ratio": 1.25}


def test_focaler_rejects_d_not_below_u():
    """d < u involves two params: the registry's cross-parameter check refuses it when the loss is bound (naming
    both keys); a direct call of the wrapper raises ValueError too, before any computation."""
    from boxloss.errors import ConfigError
    from boxloss.losses.iou_wrappers import focaler_terms

    for d, u in ((0.6, 0.5), (0.5, 0.5)):
        with pytest.raises(ConfigError, match=f"focaler_d={d!r} focaler_u={u!r}: d must be below u"):
            get_spec("focaler_ciou").bind(d=d, u=u)
        with pytest.raises(ValueError, match="d < u"):
            focaler_terms(lambda p, t: (p.sum(-1), {"iou": p.sum(-1)}), torch.zeros(0, 4), torch.zeros(0, 4),
                          d=d, u=u)


# ---------------------------------------------------------------------------------------------------------
# 5. float64 gradcheck with non-default parameters
# ---------------------------------------------------------------------------------------------------------

GRADCHECK_CASES = [
    ("siou", {"theta": 2.0}),
    ("shape_iou", {"scale": 1.0}),
    ("piou_v2", {"lam": 1.0}),
    ("mpdiou", {"image_size": (320.0, 256.0), "stride": torch.tensor([8.0, 16.0] * 4, dtype=torch.float64)}),
    ("nwd", {"constant": 2.0, "stride": torch.tensor([8.0, 16.0] * 4, dtype=torch.float64)}),
    ("inner_siou", {"ratio": 1.3}),
    ("inner_shape_iou", {"ratio": 0.6, "scale": 0.5}),
    ("focaler_diou", {"d": 0.02, "u": 0.9}),
    ("focaler_mpdiou", {"image_size": (640.0, 640.0), "stride": 8.0}),
    ("alpha_giou", {"power": 0.5}),
    ("alpha_eiou", {"power": 2.0}),
]


@pytest.mark.parametrize("name, kwargs", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck_non_default(name, kwargs):
    pred, target = _generic_pairs()
    pred.requires_grad_(), target.requires_grad_()
    assert torch.autograd.gradcheck(lambda p, t: get_loss(name)(p, t, **kwargs), (pred, target), eps=1e-6, atol=1e-7,
                                    rtol=1e-5)


def test_gradcheck_wiou_v3_with_the_calls_own_mean():
    """iou_mean=None: the mean over the call is detached too; finite differences see r frozen at the checked point."""
    pred, target = _generic_pairs()
    pred.requires_grad_(), target.requires_grad_()
    loss0 = 1 - aligned_iou(pred.detach(), target.detach())
    beta0 = loss0 / loss0.mean()
    r0 = beta0 / (3.0 * 1.9 ** (beta0 - 3.0))
    frozen_v1 = _wiou_diagonal_frozen(pred.detach(), target.detach())
    frozen = lambda p, t: r0 * frozen_v1(p, t)  # noqa: E731
    torch.testing.assert_close(frozen(pred, target), wiou_v3_loss(pred, target), rtol=1e-12, atol=0)
    function = lambda p, t: _NumericOfFrozen.apply(p, t, frozen, wiou_v3_loss)  # noqa: E731
    assert torch.autograd.gradcheck(function, (pred, target), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("power", [3.0, 1.5])
def test_alpha_ciou_holds_cious_alpha_constant(power):
    """α-CIoU = 1 − IoU^p + (ρ²/c²)^p + (α v)^p with α = v/(1 − IoU + v) detached (the authors' code). Its effect
    on the gradient is too weak for gradcheck's tolerance, so compare gradients directly: autograd of the loss
    equals that of a reference with α frozen, and differs from one where α carries a gradient."""
    pred, target = _generic_pairs()

    def reference(p, t, frozen_alpha):
        w, h = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1] + EPS
        w_gt, h_gt = t[:, 2] - t[:, 0], t[:, 3] - t[:, 1] + EPS
        v = 4 / math.pi**2 * (torch.atan(w_gt / h_gt) - torch.atan(w / h)) ** 2
        iou = aligned_iou(p, t)
        alpha = v / (1 - iou + v + EPS)
        alpha = alpha.detach() if frozen_alpha else alpha
        distance = diou_loss(p, t) - (1 - iou)  # ρ²/c²
        return 1 - iou**power + distance**power + (alpha * v) ** power

    grads = {}
    for label, function in (("ours", lambda p, t: get_loss("alpha_ciou")(p, t, power=power)),
                            ("frozen", lambda p, t: reference(p, t, True)),
                            ("live", lambda p, t: reference(p, t, False))):
        p = pred.clone().requires_grad_()
        value = function(p, target)
        value.sum().backward()
        grads[label] = (value.detach(), p.grad)
    torch.testing.assert_close(grads["ours"][0], grads["frozen"][0], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(grads["ours"][1], grads["frozen"][1], rtol=1e-9, atol=1e-13)
    assert not torch.allclose(grads["ours"][1], grads["live"][1], rtol=1e-9, atol=1e-13)
