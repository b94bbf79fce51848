"""The scale of each box loss at the start of training, and the box gain that matches it to CIoU's.

Losses differ in magnitude at the same gain (EIoU adds terms, Focal-EIoU weights them down, the L1 losses are in
other units), so comparing them at ultralytics' box gain of 7.5 mixes a loss's geometry with its scale. Here every
loss is evaluated on the same first ``batches`` training batches (ultralytics' own dataloader, augmentation as in
training, fixed seed) through the same untrained model (fixed seed): the mean box loss per batch, before the gain.
The matched gain of a loss is ``7.5 × mean(CIoU) / mean(loss)``: its box term then starts where CIoU's does.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

STOCK_BOX_GAIN = 7.5  # ultralytics' default `box`


def initial_box_losses(losses: Sequence[str | tuple[str, dict[str, Any]]], data: str, model: str = "yolov8n.yaml",
                       batches: int = 20, imgsz: int = 320, batch: int = 16, seed: int = 0,
                       workers: int = 0) -> dict[str, float]:
    """``{label: mean box loss over the first batches}`` (without the gain) for each loss (a name, or a name with
    extra train keys such as ``{"l1_units": "box"}``), all on one model and one sequence of batches."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.utils.torch_utils import init_seeds

    from ..data.embedded import resolve_data
    from . import BoxLossDetectionModel

    cfg = get_cfg(overrides={"imgsz": imgsz, "batch": batch, "seed": seed, "workers": workers})
    dataset_info = check_det_dataset(resolve_data(data))
    init_seeds(seed, deterministic=True)
    net = BoxLossDetectionModel(model, nc=dataset_info["nc"], verbose=False).train()
    dataset = build_yolo_dataset(cfg, dataset_info["train"], batch, dataset_info, mode="train", stride=32)
    loader = build_dataloader(dataset, batch, workers, shuffle=True, rank=-1)
    samples = []
    for index, item in enumerate(loader):  # training batches: augmentation as in training
        if index >= batches:
            break
        item["img"] = item["img"].float() / 255
        with torch.no_grad():
            samples.append((net(item["img"]), item))
    labels = {}
    for entry in losses:
        name, extra = (entry, {}) if isinstance(entry, str) else entry
        label = name + "".join(f":{k}={v}" for k, v in extra.items())
        net.args = get_cfg(overrides={"box_loss": name, **extra})
        criterion = net.init_criterion()
        values = []
        for preds, item in samples:
            with torch.no_grad():
                _, items = criterion(preds, item)
            values.append(float(items["box_loss"]) / float(net.args.box))
        labels[label] = sum(values) / len(values)
    return labels


def matched_gains(scales: dict[str, float], baseline: str = "ciou") -> dict[str, float]:
    """``{label: 7.5 × scale(baseline) / scale(label)}``."""
    return {label: STOCK_BOX_GAIN * scales[baseline] / value for label, value in scales.items()}
