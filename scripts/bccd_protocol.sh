#!/usr/bin/env bash
# The BCCD protocol: convert BCCD (Pascal VOC) to YOLO once, then benchmark the box losses on it.
# DATASET=raccoon runs the same protocol on the raccoon dataset (one class, large objects: BCCD's opposite);
# DATASET=coco128-obb and DATASET=dota8 run it for oriented boxes (YOLO11n-obb, the rotated losses, COCO AP on the
# exact polygon IoU): coco128's objects as minimum-area rectangles of their polygons, or ultralytics' 8 DOTA tiles.
#
#   bash scripts/bccd_protocol.sh                       # the full protocol (5 configs x 10 seeds, val and test)
#   JOBS=12 DEVICE=0 bash scripts/bccd_protocol.sh      # on one GPU, twelve runs at once (seed by seed)
#   MINUTES=10 DRY_RUN=1 bash scripts/bccd_protocol.sh  # what is finished, what 10 more minutes would add
#   DATASET=raccoon JOBS=2 bash scripts/bccd_protocol.sh  # raccoon: its official 160/40 split, val carved from train
#   EPOCHS=1 SEEDS=0 CFGS=ciou,eiou bash scripts/bccd_protocol.sh workers=0   # extra args go to benchmark.py
#   DATASET=coco128-obb JOBS=12 DEVICE=0 bash scripts/bccd_protocol.sh cuda_mps=true   # the rotated losses, one GPU
#
# Step 0: `scripts/benchmark.py check ...` refuses, before anything is converted, what the benchmark of step 3
#         would refuse (a bad key, device=0 or cuda_mps=true without CUDA, ...); the dataset is checked once it exists.
# Step 1: `scripts/convert.py voc` converts $BCCD into $BCCD_YOLO, keeping the official ImageSets/Main split
#         (train 205 / val 87 / test 72 images); skipped when $BCCD_YOLO/data.yaml already exists. coco128-obb:
#         `convert.py coco task=obb` into $YOLO-all, then `convert.py split val=0.25 seed=0` into $YOLO (96 / 32
#         images); dota8 is YOLO-OBB already (its dota8.yaml: 4 train / 4 val tiles), nothing is converted.
# Step 2: `scripts/benchmark.py status ...` prints what is finished in $OUT, what is still to do in the order it
#         starts, and what $MINUTES more minutes at $RUNS_PER_HOUR would finish (runs and whole seeds). A refusal
#         here (status 2) is the benchmark's own and ends the script: every refusal is said once.
# Step 3: `scripts/benchmark.py cfgs=$CFGS seeds=$SEEDS data=$BCCD_YOLO/data.yaml splits=val,test epochs=$EPOCHS
#         imgsz=$IMGSZ batch=16 jobs=$JOBS [device=$DEVICE] out=$OUT "$@"`: every config x seed trained, then
#         COCO-evaluated on val and test, JOBS runs at once (devices round-robin, CPU threads split). With JOBS > 1
#         the runs start seed by seed (all configs of seed k before seed k + 1), and a result is published only with
#         the rest of its seed, so a slot of GPU time that ends mid-matrix leaves whole seeds: complete pairs.
#         It is resumable: run the same command again after an interrupt and finished runs are skipped. Extra
#         key=value arguments are passed through and, given twice, the later wins (e.g. batch=32, device=0).
#
# Environment (defaults; a relative SRC, YOLO or OUT you give is taken from where you run the script; the defaults
# are relative to the repository root, which is the working directory of every step):
#   DATASET=bccd                          bccd, raccoon, coco128-obb or dota8
#   SRC=../shared/datasets/bccd/BCCD      the VOC folder (Annotations/, JPEGImages/, ImageSets/Main/: its official
#                                         split); raccoon: ../shared/datasets/raccoon (annotations/, images/, and the
#                                         official split lists data/{train,test}_labels.csv; val: 1/8 of train, seed 0)
#                                         (BCCD= is still read as SRC= for bccd); coco128-obb: ../shared/datasets/coco128
#                                         (train2017/, annotations/instances_train2017.json); dota8:
#                                         ../shared/datasets/dota8 (dota8.yaml)
#   YOLO=datasets/<dataset>-yolo          the converted YOLO dataset (BCCD_YOLO= is still read for bccd)
#   CFGS=ciou,eiou,focal_eiou,ciou_at_eiou_scale,eiou_matched (raccoon: ciou,eiou,focal_eiou; coco128-obb and
#                                         dota8: probiou,kld,gwd,kfiou,riou,reiou)
#   SEEDS=0,...,9   EPOCHS=40 (raccoon, coco128-obb, dota8: 100)   IMGSZ=320 (coco128-obb: 640, dota8: 1024)
#   SPLITS=val,test (coco128-obb and dota8 have no test split: val)
#     ciou_at_eiou_scale (CIoU at EIoU's initial box-loss scale) and eiou_matched (EIoU at CIoU's) separate a
#     loss's geometry from its scale; their gains come from scripts/matched_gains.py on BCCD.
#   JOBS=1 (runs at once)   DEVICE= (empty: ultralytics' choice; 0, 0,1 or cpu)
#   OUT=runs/benchmark/<dataset>          the benchmark folder (results/, report.md, summary.json, ...)
#   MINUTES=10                            the machine time step 2 forecasts
#   RUNS_PER_HOUR=                        the throughput of this machine at JOBS (default: measured from the runs
#                                         already finished in OUT, else the H200's 153 runs/h of this protocol at
#                                         12 at once; see results/bccd_h200/README.md)
#   PYTHON=.venv/bin/python               (python3 when there is no .venv)
#   DRY_RUN=1                             print the status and the benchmark command instead of running it (also
#                                         when this machine refuses it, e.g. DEVICE=0 without CUDA: said once, above)
# Exit status: the check's or the converter's (2 on bad input) or the benchmark's (2 bad input, 1 a failed run,
# 130 interrupted).
set -euo pipefail

here=$(pwd)
from_here() {  # a user-given path, made absolute against the directory the script was run from
    case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$here/$1" ;; esac
}
DATASET=${DATASET:-bccd}
rotated_cfgs=probiou,kld,gwd,kfiou,riou,reiou
default_splits=val,test; default_imgsz=320; data_file=data.yaml
case "$DATASET" in
    bccd) default_src=../shared/datasets/bccd/BCCD; SRC=${SRC:-${BCCD:-}}; YOLO=${YOLO:-${BCCD_YOLO:-}}
          default_cfgs=ciou,eiou,focal_eiou,ciou_at_eiou_scale,eiou_matched; default_epochs=40 ;;
    raccoon) default_src=../shared/datasets/raccoon; SRC=${SRC:-}; YOLO=${YOLO:-}
             default_cfgs=ciou,eiou,focal_eiou; default_epochs=100 ;;
    coco128-obb) default_src=../shared/datasets/coco128; SRC=${SRC:-}; YOLO=${YOLO:-}
                 default_cfgs=$rotated_cfgs; default_epochs=100; default_splits=val; default_imgsz=640 ;;
    dota8) default_src=../shared/datasets/dota8; SRC=${SRC:-}; YOLO=${YOLO:-}; data_file=dota8.yaml
           default_cfgs=$rotated_cfgs; default_epochs=100; default_splits=val; default_imgsz=1024 ;;
    *) echo "bccd_protocol.sh: error: DATASET=$DATASET must be bccd, raccoon, coco128-obb or dota8" >&2; exit 2 ;;
esac
SRC=$([[ -n "${SRC:-}" ]] && from_here "$SRC" || echo "$default_src")
if [[ "$DATASET" == dota8 ]]; then  # already YOLO-OBB: the dataset is its source
    YOLO=$SRC
else
    YOLO=$([[ -n "${YOLO:-}" ]] && from_here "$YOLO" || echo "datasets/$DATASET-yolo")
fi
OUT=$([[ -n "${OUT:-}" ]] && from_here "$OUT" || echo "runs/benchmark/$DATASET")
PYTHON=$([[ -n "${PYTHON:-}" ]] && echo "$PYTHON" || echo .venv/bin/python)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ "$PYTHON" == .venv/bin/python && ! -x "$PYTHON" ]]; then PYTHON=python3; fi

keys=("cfgs=${CFGS:-$default_cfgs}"
      "seeds=${SEEDS:-0,1,2,3,4,5,6,7,8,9}" "data=$YOLO/$data_file" "splits=${SPLITS:-$default_splits}"
      "epochs=${EPOCHS:-$default_epochs}" "imgsz=${IMGSZ:-$default_imgsz}" batch=16 "jobs=${JOBS:-1}")
if [[ -n "${DEVICE:-}" ]]; then keys+=("device=$DEVICE"); fi
keys+=("out=$OUT" "$@")
command=("$PYTHON" scripts/benchmark.py "${keys[@]}")

dry_run=${DRY_RUN:-0}
refused=0  # the exit status of a refusal, said once by the step that refused; a dry run still prints the command
"$PYTHON" scripts/benchmark.py check "${keys[@]}" || refused=$?
if [[ $refused != 0 && $dry_run != 1 ]]; then exit "$refused"; fi

if [[ $refused != 0 ]]; then
    :  # nothing is converted for a command that would be refused
elif [[ -f "$YOLO/$data_file" ]]; then
    echo "bccd_protocol: using the dataset $YOLO/$data_file"
elif [[ "$DATASET" == dota8 ]]; then
    echo "bccd_protocol.sh: error: $YOLO/$data_file not found (SRC= names the dota8 folder)" >&2
    exit 2
elif [[ "$DATASET" == bccd ]]; then
    echo "bccd_protocol: converting $SRC -> $YOLO"
    "$PYTHON" scripts/convert.py voc "src=$SRC" "out=$YOLO"
elif [[ "$DATASET" == coco128-obb ]]; then
    if [[ -f "$YOLO-all/data.yaml" ]]; then  # a run cut short between the two steps: the conversion is kept
        echo "bccd_protocol: using the oriented-box conversion $YOLO-all -> $YOLO (val 1/4, seed 0)"
    else
        echo "bccd_protocol: converting $SRC -> $YOLO-all (oriented boxes) -> $YOLO (val 1/4, seed 0)"
        "$PYTHON" scripts/convert.py coco "images=$SRC/train2017" "json=$SRC/annotations/instances_train2017.json" \
            task=obb "out=$YOLO-all"
    fi
    "$PYTHON" scripts/convert.py split "data=$YOLO-all/data.yaml" val=0.25 seed=0 "out=$YOLO"
else
    echo "bccd_protocol: converting $SRC -> $YOLO (official split lists, val carved from train)"
    "$PYTHON" scripts/convert.py voc "annotations=$SRC/annotations" "images=$SRC/images" \
        "train_list=$SRC/data/train_labels.csv" "test_list=$SRC/data/test_labels.csv" val=0.125 seed=0 "out=$YOLO"
fi

status=("$PYTHON" scripts/benchmark.py status "${keys[@]}" "minutes=${MINUTES:-10}")
if [[ -n "${RUNS_PER_HOUR:-}" ]]; then status+=("runs_per_hour=$RUNS_PER_HOUR"); fi
if [[ $refused == 0 ]]; then
    "${status[@]}" || refused=$?
    if [[ $refused == 2 && $dry_run != 1 ]]; then exit 2; fi  # the plan's refusal: the benchmark would say it again
    if [[ $refused != 0 && $refused != 2 ]]; then
        echo "bccd_protocol: no status (exit status $refused); going on with the benchmark" >&2
        refused=0
    fi
fi
if [[ $dry_run == 1 ]]; then
    if [[ $refused != 0 ]]; then
        echo "bccd_protocol: DRY_RUN=1, would run (refused on this machine, as said above; in $(pwd)):"
    else
        echo "bccd_protocol: DRY_RUN=1, would run (in $(pwd)):"
    fi
    quoted=()
    for arg in "${command[@]}"; do  # quote only what the shell would split or expand
        if [[ "$arg" =~ ^[A-Za-z0-9_./=,:+@%-]+$ ]]; then quoted+=("$arg"); else quoted+=("$(printf '%q' "$arg")"); fi
    done
    echo "${quoted[*]}"
    exit 0
fi
exec "${command[@]}"
