"""Where the AP goes: the TIDE error decomposition, through hotcoco's ``COCOeval.tide_errors``.

Bolya, Foley, Hays, Hoffman, "TIDE: A General Toolbox for Identifying Object Detection Errors", ECCV 2020,
arXiv 2008.08115; reference code tidecv, which hotcoco (1.3) reproduces on COCO's matching.

At a foreground IoU t_f (0.5, TIDE's standard, and 0.75, where the boxes a box loss improves are judged) and a
background IoU t_b = 0.1, every false positive gets exactly one error type, tested in this order:

- ``Loc``  localisation: right class, best IoU with a GT of its class in [t_b, t_f];
- ``Cls``  classification: IoU >= t_f with a GT of another class;
- ``Dupe`` duplicate: right class, IoU >= t_f with a GT that a higher-scoring detection already matched;
- ``Bkg``  background: IoU <= t_b with every GT;
- ``Both`` class and box wrong: the rest (best IoU with another class's GT in (t_b, t_f));

and every GT that no detection matched and no Cls or Loc error aims at is a ``Miss``.

ΔAP of a type = AP after an oracle fixes every error of that type - AP. Each oracle is applied alone to the
original detections (not one after another), so the ΔAPs do not add up to 1 - AP:

- Cls / Loc: the detection takes the GT's class / box and becomes that GT's true positive, provided the GT is
  still unmatched and this is the highest-scoring Cls or Loc error aimed at it; otherwise it is removed;
- Both, Dupe, Bkg: the detection is removed;
- Miss: the GT leaves the count of positives.

Two more oracles bound what is left: ``FP`` removes every false positive (perfect precision, recall unchanged) and
``FN`` removes every unmatched GT from the count (perfect recall, precision unchanged; a superset of Miss).

AP is COCO's at the single IoU t_f: COCO's greedy matching and crowd rule (a detection on a crowd region is
ignored and no error; a crowd region is never a miss), area "all", at most 100 detections per image and class,
101-point interpolation, mean over the categories with ground truth. So ``ap`` is metrics.json's AP50 (t_f = 0.5)
or AP75 (t_f = 0.75), within 1e-12 (tested). tidecv itself drops crowd regions from its matching, which is why it
reads slightly differently on COCO images with crowds.

Masks, keypoints and oriented boxes (``iou_type="segm"`` / ``"keypoints"`` / ``"obb"``): the same decomposition
with mask IoU (TIDE's own instance-segmentation mode), keypoint OKS or the exact IoU of the oriented boxes (hotcoco's
extensions; TIDE defines boxes and masks) as the similarity, also between a detection and another class's objects,
and COCO's matching of that family, so ``ap`` is that family's AP50 / AP75 (tested to 1e-12, crowd regions
included).

One departure from the paper's wording (tidecv's, which hotcoco follows): a Cls and a Loc error aimed at the same
unmatched GT compete for it even in an oracle that fixes only one of the two types. Minimal case (pinned by
tests/test_tide.py): GT g of class 1 and GT h of class 2; detections A (class 1, IoU 0.3 with g, score 0.9: Loc),
B (class 2, IoU 1 with g, score 0.8: Cls) and C (class 2, exactly h, score 0.7). AP50 = (0 + 0.5) / 2 = 0.25. The
Cls oracle removes B, because the higher-scoring A is g's chosen fix, although this oracle leaves A alone:
ΔCls = 0.25. Fixing B's class as the paper describes would make B g's true positive behind A: ΔCls = 0.5.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from .._io import format_table
from .coco_eval import run_cocoeval

TIDE_ERRORS = ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
TIDE_ORACLES = ("FP", "FN")
FOREGROUND_IOUS = (0.5, 0.75)  # TIDE's standard, and the strict one
BACKGROUND_IOU = 0.1


def ap_key(foreground_iou: float) -> str:
    """``"AP50"`` for 0.5: the metrics.json AP a decomposition at this IoU is relative to."""
    return f"AP{round(foreground_iou * 100)}"


def tide_errors(gt: str | os.PathLike | Mapping[str, Any], predictions: Iterable[Mapping[str, Any]],
                foreground_ious: Iterable[float] = FOREGROUND_IOUS,
                background_iou: float = BACKGROUND_IOU, iou_type: str = "bbox",
                kpt_oks_sigmas: Iterable[float] | None = None) -> dict[str, Any]:
    """The TIDE decomposition of ``predictions`` at each foreground IoU (the content of val.py's tide.json).

    Args:
        gt, predictions: as :func:`boxloss.evaluation.evaluate` takes them (checked the same way).
        foreground_ious: IoUs of COCO's grid 0.50:0.05:0.95 (hotcoco matches at the nearest grid threshold).
        background_iou: t_b.
        iou_type, kpt_oks_sigmas: the family (``bbox``, ``segm``, ``keypoints``, ``obb``) and the OKS sigmas, as
            :func:`boxloss.evaluation.evaluate` takes them; ``settings.iou_type`` names a family other than boxes.

    Returns:
        ``{"AP50": {"foreground_iou", "ap", "delta_ap": {Cls, Loc, Both, Dupe, Bkg, Miss, FP, FN}, "counts":
        {Cls, Loc, Both, Dupe, Bkg, Miss}}, "AP75": {...}, "settings": {"background_iou", "max_det",
        "evaluator"}}``; ΔAPs and ``ap`` are fractions like metrics.json's, counts are detections (GTs for Miss).
    """
    from hotcoco import __version__

    evaluator = run_cocoeval(gt, predictions, "hotcoco", iou_type, kpt_oks_sigmas)
    result: dict[str, Any] = {}
    for foreground_iou in foreground_ious:
        found = evaluator.tide_errors(pos_thr=float(foreground_iou), bg_thr=float(background_iou))
        result[ap_key(foreground_iou)] = {
            "foreground_iou": float(foreground_iou), "ap": float(found["ap_base"]),
            "delta_ap": {key: float(found["delta_ap"][key]) for key in (*TIDE_ERRORS, *TIDE_ORACLES)},
            "counts": {key: int(found["counts"][key]) for key in TIDE_ERRORS}}
    result["settings"] = {"background_iou": float(background_iou),
                          "max_det": int(max(evaluator.params.maxDets)),  # 100 (keypoints: 20)
                          "evaluator": f"hotcoco {__version__} COCOeval.tide_errors"}
    if iou_type != "bbox":
        result["settings"]["iou_type"] = iou_type
    return result


def format_tide_table(rows: Mapping[str, Mapping[str, Any]], *, style: str = "markdown", digits: int = 4,
                      first_column: str = "model") -> str:
    """``{name: tide_errors(...)}`` as two tables: ΔAP per error type (with the AP it is relative to), then counts.

    One row per name and foreground IoU (``ciou AP50``; just ``AP50`` for a single unnamed row, name ``""``).
    """
    delta_rows, count_rows = [], []
    for name, tide in rows.items():
        for key, part in tide.items():
            if key == "settings":
                continue
            label = f"{name} {key}".strip()
            delta_rows.append([label, f"{part['ap']:.{digits}f}",
                               *(f"{part['delta_ap'][k]:.{digits}f}" for k in (*TIDE_ERRORS, *TIDE_ORACLES))])
            count_rows.append([label, *(str(part["counts"][k]) for k in TIDE_ERRORS)])
    deltas = format_table([first_column, "AP", *(f"Δ{k}" for k in (*TIDE_ERRORS, *TIDE_ORACLES))], delta_rows,
                          style=style)
    counts = format_table([first_column, *(f"n {k}" for k in TIDE_ERRORS)], count_rows, style=style)
    return deltas + "\n\n" + counts
