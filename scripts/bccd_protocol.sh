#!/usr/bin/env bash
# The BCCD protocol: convert BCCD (Pascal VOC) to YOLO once, then benchmark the box losses on it.
#
#   bash scripts/bccd_protocol.sh                       # the full protocol (6 configs x 10 seeds, val and test)
#   JOBS=4 DEVICE=0 bash scripts/bccd_protocol.sh       # on one GPU, four runs at once (about 30 min on an H100)
#   EPOCHS=1 SEEDS=0 CFGS=ciou,eiou bash scripts/bccd_protocol.sh workers=0   # extra args go to benchmark.py
#   DRY_RUN=1 bash scripts/bccd_protocol.sh             # convert if needed, print the benchmark command, run nothing
#
# Step 1: `scripts/convert.py voc` converts $BCCD into $BCCD_YOLO, keeping the official ImageSets/Main split
#         (train 205 / val 87 / test 72 images); skipped when $BCCD_YOLO/data.yaml already exists.
# Step 2: `scripts/benchmark.py cfgs=$CFGS seeds=$SEEDS data=$BCCD_YOLO/data.yaml splits=val,test epochs=$EPOCHS
#         imgsz=$IMGSZ batch=16 jobs=$JOBS [device=$DEVICE] out=$OUT "$@"`: every config x seed trained, then
#         COCO-evaluated on val and test, JOBS runs at once (devices round-robin, CPU threads split).
#         It is resumable: run the same command again after an interrupt and finished runs are skipped. Extra
#         key=value arguments are passed through and, given twice, the later wins (e.g. batch=32, device=0).
#
# Environment (defaults; a relative BCCD, BCCD_YOLO or OUT you give is taken from where you run the script; the
# defaults are relative to the repository root, which is the working directory of both steps):
#   BCCD=../shared/datasets/bccd/BCCD     the VOC folder (Annotations/, JPEGImages/, ImageSets/Main/)
#   BCCD_YOLO=datasets/bccd-yolo          the converted YOLO dataset
#   CFGS=ciou,eiou,focal_eiou,iou_aware,eiou_matched,focal_eiou_matched   SEEDS=0,...,9   EPOCHS=40   IMGSZ=320
#   JOBS=1 (runs at once)   DEVICE= (empty: ultralytics' choice; 0, 0,1 or cpu)
#   The matched-gain configs (cfg/*_matched.yaml) come from scripts/matched_gains.py on BCCD.
#   OUT=runs/benchmark/bccd               the benchmark folder (results/, report.md, summary.json, ...)
#   PYTHON=.venv/bin/python               (python3 when there is no .venv)
#   DRY_RUN=1                             print the benchmark command instead of running it
# Exit status: the converter's (2 on bad input) or the benchmark's (2 bad input, 1 a failed run,
# 130 interrupted).
set -euo pipefail

here=$(pwd)
from_here() {  # a user-given path, made absolute against the directory the script was run from
    case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$here/$1" ;; esac
}
BCCD=$([[ -n "${BCCD:-}" ]] && from_here "$BCCD" || echo ../shared/datasets/bccd/BCCD)
BCCD_YOLO=$([[ -n "${BCCD_YOLO:-}" ]] && from_here "$BCCD_YOLO" || echo datasets/bccd-yolo)
OUT=$([[ -n "${OUT:-}" ]] && from_here "$OUT" || echo runs/benchmark/bccd)
PYTHON=$([[ -n "${PYTHON:-}" ]] && echo "$PYTHON" || echo .venv/bin/python)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ "$PYTHON" == .venv/bin/python && ! -x "$PYTHON" ]]; then PYTHON=python3; fi

if [[ -f "$BCCD_YOLO/data.yaml" ]]; then
    echo "bccd_protocol: using the converted dataset $BCCD_YOLO/data.yaml"
else
    echo "bccd_protocol: converting $BCCD -> $BCCD_YOLO"
    "$PYTHON" scripts/convert.py voc --src "$BCCD" --out "$BCCD_YOLO"
fi

command=("$PYTHON" scripts/benchmark.py "cfgs=${CFGS:-ciou,eiou,focal_eiou,iou_aware,eiou_matched,focal_eiou_matched}"
         "seeds=${SEEDS:-0,1,2,3,4,5,6,7,8,9}" "data=$BCCD_YOLO/data.yaml" splits=val,test "epochs=${EPOCHS:-40}"
         "imgsz=${IMGSZ:-320}" batch=16 "jobs=${JOBS:-1}")
if [[ -n "${DEVICE:-}" ]]; then command+=("device=$DEVICE"); fi
command+=("out=$OUT" "$@")
if [[ "${DRY_RUN:-0}" == 1 ]]; then
    echo "bccd_protocol: DRY_RUN=1, would run (in $(pwd)):"
    quoted=()
    for arg in "${command[@]}"; do  # quote only what the shell would split or expand
        if [[ "$arg" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then quoted+=("$arg"); else quoted+=("$(printf '%q' "$arg")"); fi
    done
    echo "${quoted[*]}"
    exit 0
fi
exec "${command[@]}"
