"""Random aligned box pairs, axis-aligned and rotated, shared by the loss benchmark (scripts/bench_loss.py) and the
loss tests.

One generator per box format, so the benchmark times the losses on the same kind of input the tests check them on
(fvcore's ``tests/bm_*.py`` reuse their tests' setup in the same way). Pure torch, no project imports.
"""

from __future__ import annotations

import torch


def random_boxes(n: int, seed: int = 0, *, disjoint_fraction: float = 0.25, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` aligned (pred, target) pairs of valid xyxy boxes, each (n, 4), at YOLO grid scale.

    Targets: centres uniform in [0, 80)², sides uniform in [1, 20) (grid units of a 640 image at stride 8).
    Predictions: the target jittered (centre by N(0, 0.25·side), sides scaled by exp(N(0, 0.3))), so most of
    them overlap their target with IoUs spread over (0, 1]; the first ``round(disjoint_fraction · n)`` pairs
    are instead moved sideways, a gap of 0.5 to 10 from the target in x, so they are disjoint for sure.
    Coordinates are drawn in float64 from a seeded CPU generator, then cast, so every device and dtype
    sees the same boxes.
    """
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    target_centre = torch.rand(n, 2, generator=g, dtype=f64) * 80  # [n, 2]
    target_size = 1 + torch.rand(n, 2, generator=g, dtype=f64) * 19  # [n, 2]
    pred_centre = target_centre + torch.randn(n, 2, generator=g, dtype=f64) * 0.25 * target_size
    pred_size = target_size * torch.exp(torch.randn(n, 2, generator=g, dtype=f64) * 0.3)

    n_disjoint = round(disjoint_fraction * n)
    side = torch.where(torch.rand(n_disjoint, generator=g, dtype=f64) < 0.5, -1.0, 1.0).to(f64)
    gap = 0.5 + torch.rand(n_disjoint, generator=g, dtype=f64) * 9.5
    half_widths = (target_size[:n_disjoint, 0] + pred_size[:n_disjoint, 0]) / 2
    pred_centre[:n_disjoint, 0] = target_centre[:n_disjoint, 0] + side * (half_widths + gap)

    def xyxy(centre, size):
        return torch.cat((centre - size / 2, centre + size / 2), dim=-1)

    return (xyxy(pred_centre, pred_size).to(device=device, dtype=dtype),
            xyxy(target_centre, target_size).to(device=device, dtype=dtype))


def random_rotated_boxes(n: int, seed: int = 0, *, disjoint_fraction: float = 0.25, device: str | torch.device = "cpu",
                         dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` aligned (pred, target) pairs of rotated boxes, xywhr (angle in radians), each (n, 5), at YOLO grid scale.

    Targets: centres uniform in [0, 80)², sides uniform in [1, 20), angles uniform in [−π, π). Predictions: the
    target jittered as in :func:`random_boxes` (centre by N(0, 0.25·side), sides scaled by exp(N(0, 0.3))) and
    turned by N(0, 0.3) rad, so most of them overlap their target; the first ``round(disjoint_fraction · n)`` pairs
    are instead moved sideways in x by the two circumradii plus a gap of 0.5 to 10, so they are disjoint for sure.
    Drawn in float64 from a seeded CPU generator, then cast.
    """
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    target_centre = torch.rand(n, 2, generator=g, dtype=f64) * 80  # [n, 2]
    target_size = 1 + torch.rand(n, 2, generator=g, dtype=f64) * 19  # [n, 2]
    target_angle = (torch.rand(n, 1, generator=g, dtype=f64) * 2 - 1) * torch.pi  # [n, 1]
    pred_centre = target_centre + torch.randn(n, 2, generator=g, dtype=f64) * 0.25 * target_size
    pred_size = target_size * torch.exp(torch.randn(n, 2, generator=g, dtype=f64) * 0.3)
    pred_angle = target_angle + torch.randn(n, 1, generator=g, dtype=f64) * 0.3

    n_disjoint = round(disjoint_fraction * n)
    side = torch.where(torch.rand(n_disjoint, generator=g, dtype=f64) < 0.5, -1.0, 1.0).to(f64)
    gap = 0.5 + torch.rand(n_disjoint, generator=g, dtype=f64) * 9.5
    radii = (target_size[:n_disjoint].norm(dim=1) + pred_size[:n_disjoint].norm(dim=1)) / 2
    pred_centre[:n_disjoint, 0] = target_centre[:n_disjoint, 0] + side * (radii + gap)

    return (torch.cat((pred_centre, pred_size, pred_angle), 1).to(device=device, dtype=dtype),
            torch.cat((target_centre, target_size, target_angle), 1).to(device=device, dtype=dtype))
