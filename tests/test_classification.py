"""Tests for the classification losses and IoU-balanced classification weights (boxloss.losses.classification)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from boxloss import get_loss
from boxloss.losses import bce, focal, iou_balanced_cls_weights


@pytest.fixture
def logits_and_soft_targets():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=g, dtype=torch.float64) * 3
    targets = torch.rand(64, 5, generator=g, dtype=torch.float64)  # YOLO's soft, task-aligned targets
    targets[::2] = (targets[::2] > 0.5).to(torch.float64)  # and hard ones
    return logits, targets


def test_bce_is_the_cross_entropy_formula(logits_and_soft_targets):
    """−t log p − (1 − t) log(1 − p), p = sigmoid(logit)."""
    logits, targets = logits_and_soft_targets
    p = logits.sigmoid()
    torch.testing.assert_close(bce(logits, targets), -targets * p.log() - (1 - targets) * (1 - p).log())


def test_focal_with_gamma_zero_and_no_alpha_is_bce(logits_and_soft_targets):
    """(1 − p_t)^0 = 1 and α = −1 disables α_t: focal loss is exactly the cross entropy."""
    logits, targets = logits_and_soft_targets
    assert torch.equal(focal(logits, targets, gamma=0.0, alpha=-1), bce(logits, targets))
    assert torch.equal(get_loss("focal", "cls")(logits, targets, gamma=0.0, alpha=-1),
                       F.binary_cross_entropy_with_logits(logits, targets, reduction="none"))


def test_focal_hand_values():
    """logit 0: p = 1/2, CE = ln 2, p_t = 1/2, (1 − p_t)² = 1/4; α_t = 0.25 for t = 1, 0.75 for t = 0.
    logit ln 3 (p = 3/4), t = 1: CE = ln(4/3), (1/4)² = 1/16, α_t = 0.25."""
    logits = torch.tensor([0.0, 0.0, math.log(3)], dtype=torch.float64)
    targets = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    expected = torch.tensor([0.25 * 0.25 * math.log(2), 0.75 * 0.25 * math.log(2),
                             0.25 / 16 * math.log(4 / 3)], dtype=torch.float64)
    torch.testing.assert_close(focal(logits, targets), expected, rtol=1e-12, atol=0)


def test_focal_down_weights_easy_examples():
    """fvcore's property: the ratio focal/CE, (1 − p_t)^γ, falls as the example gets easier."""
    logits = torch.tensor([-2.0, 0.0, 2.0, 4.0], dtype=torch.float64)  # p_t rising for t = 1
    targets = torch.ones(4, dtype=torch.float64)
    ratio = focal(logits, targets, alpha=-1) / bce(logits, targets)
    assert (ratio.diff() < 0).all()


def test_iou_balanced_cls_weights_keep_the_positive_loss_sum():
    g = torch.Generator().manual_seed(1)
    ce = torch.rand(50, generator=g, dtype=torch.float64, requires_grad=True) * 2
    iou = torch.rand(50, generator=g, dtype=torch.float64, requires_grad=True)
    weights = iou_balanced_cls_weights(ce, iou, eta=1.5)
    assert not weights.requires_grad  # detached
    torch.testing.assert_close((weights * ce).sum(), ce.sum(), rtol=1e-12, atol=0)
    # proportional to IoU^η: wᵢ / IoUᵢ^η is the same constant for every positive
    ratio = weights / iou.detach() ** 1.5
    torch.testing.assert_close(ratio, ratio[0].expand_as(ratio), rtol=1e-12, atol=0)
    # η = 0: all weights 1
    torch.testing.assert_close(iou_balanced_cls_weights(ce, iou, eta=0.0), torch.ones(50, dtype=torch.float64))


def test_iou_balanced_cls_weights_finite_when_all_ious_are_zero():
    weights = iou_balanced_cls_weights(torch.ones(3), torch.zeros(3))
    assert torch.isfinite(weights).all() and torch.equal(weights, torch.zeros(3))
