"""The initial box-loss scale of every registered loss against CIoU's, and the box gain that matches it.

    python scripts/matched_gains.py data=datasets/bccd-yolo/data.yaml
    python scripts/matched_gains.py data=datasets/bccd-yolo/data.yaml losses=all     # the wrapped losses too
    python scripts/matched_gains.py data=shapes losses=ciou,eiou,focal_eiou batches=10 write_configs=eiou,focal_eiou

Every loss is evaluated on the same first ``batches`` training batches of ``data`` (augmented as in training, fixed
seed) through the same untrained model (fixed seed): its mean box loss before the gain, its ratio to CIoU's, and
the matched gain 7.5 x CIoU / loss (the gain at which its box term starts where CIoU's does at ultralytics'
7.5). Both unit choices of the L1 losses are measured (l1_units=box, the default, and grid). Writes
<out>/initial_scale.md and .json; with write_configs=a,b also cfg/<loss>_matched.yaml, each setting box: to the
matched gain (with the command in a comment), for the benchmark's matched-gain rows. See boxloss/yolo/gains.py.

Every argument is checked before anything is measured or written (one line, exit status 2), and files that exist
already -- the published results/gains/ tables, the cfg/*_matched.yaml configs -- are replaced only with
force=true.
"""

from __future__ import annotations

import sys
from pathlib import Path

from boxloss._io import check_output_folder, check_replace, write_json_atomic, write_text_atomic
from boxloss.errors import ConfigError
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli
from boxloss.registry import BOX_LOSSES
from boxloss.param import Param

KEYS = {
    "data": Param("shapes", "dataset whose training batches are used", value_type=str),
    "model": Param("yolov8n.yaml", "model YAML (untrained, fixed seed)"),
    "losses": Param(None, "comma list of box losses, or all (default: every registered loss that wraps none; all: "
                   "the wrapped ones too)", value_type=str),
    "batches": Param(20, "training batches averaged", lambda n: n >= 1, ">= 1"),
    "imgsz": Param(320, "image size", lambda n: n > 0, "> 0"),
    "batch": Param(16, "batch size", lambda n: n > 0, "> 0"),
    "seed": Param(0, "seed of the model and of the batches", lambda n: n >= 0, ">= 0"),
    "out": Param("results/gains", "output folder"),
    "write_configs": Param(None, "comma list of losses to write cfg/<loss>_matched.yaml for", value_type=str),
    "force": Param(False, "replace existing outputs (the published results/gains/ tables, cfg/*_matched.yaml)"),
}
OUTPUTS = ("initial_scale.json", "initial_scale.md")
REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    import boxloss.yolo  # noqa: F401  (offline settings, config keys)
    from boxloss.yolo.gains import STOCK_BOX_GAIN, initial_box_losses, matched_gains
    from boxloss.data.embedded import check_data
    from boxloss.yolo.experiment import check_model

    settings = parse_keyvalues(argv, KEYS)
    check_data(settings["data"], ("train",))
    task = check_model(settings["model"]).name
    if task != "detect":
        raise ConfigError(f"model={settings['model']!r} is a {task} model; matched_gains.py measures the initial box "
                          "loss of a detection model (the box term is the same in the segmentation and pose criteria)")
    if settings["losses"] in (None, "all"):
        names = BOX_LOSSES.names(wrapped=settings["losses"] == "all", boxes="xyxy")
    else:
        names = settings["losses"].split(",")
    for name in names:
        if name not in BOX_LOSSES:
            raise ConfigError(f"losses: unknown box loss {name!r}")
        if BOX_LOSSES.spec(name).boxes != "xyxy":
            raise ConfigError(f"losses: {name} takes rotated boxes; matched_gains.py measures a detection model")
    configs = [name for name in (settings["write_configs"] or "").split(",") if name]
    for name in configs:
        if name not in names and name != "ciou":
            raise ConfigError(f"write_configs: {name!r} is not measured (add it to losses=)")
    out = Path(settings["out"])
    check_output_folder(out, "out")
    check_replace([out / name for name in OUTPUTS] + [REPO / "cfg" / f"{name}_matched.yaml" for name in configs],
                  settings["force"])
    entries = []
    for name in names:
        entries.append(name)
        if "units" in BOX_LOSSES.spec(name).params:
            entries.append((name, {"l1_units": "grid"}))
    if "ciou" not in names:
        entries.insert(0, "ciou")
    scales = initial_box_losses(entries, settings["data"], settings["model"], settings["batches"], settings["imgsz"],
                                settings["batch"], settings["seed"])
    gains = matched_gains(scales)
    command = " ".join(["python", "scripts/matched_gains.py", *argv])
    out.mkdir(parents=True, exist_ok=True)
    record = {"command": command, "settings": settings, "scales": scales, "ratio_to_ciou":
              {k: v / scales["ciou"] for k, v in scales.items()}, "matched_gain": gains}
    write_json_atomic(out / "initial_scale.json", record, indent=1)
    lines = [f"# Initial box-loss scale against CIoU ({settings['data']}, {settings['model']}, first "
             f"{settings['batches']} batches of {settings['batch']} at {settings['imgsz']} px, "
             f"seed {settings['seed']})",
             "", f"`{command}`", "", "| loss | mean box loss (no gain) | ratio to CIoU | matched box gain |",
             "|---|---:|---:|---:|"]
    lines += [f"| `{label}` | {value:.4f} | {value / scales['ciou']:.2f}x | {gains[label]:.3g} |"
              for label, value in scales.items()]
    write_text_atomic(out / "initial_scale.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    for name in configs:
        text = (f"# {name} at the box gain matched to CIoU's initial box-loss scale ({STOCK_BOX_GAIN} x "
                f"{scales['ciou']:.4f} / {scales[name]:.4f}), from:\n#   {command}\n"
                f"# so the comparison with ciou separates the loss's geometry from its scale.\n"
                f"box_loss: {name}\nbox: {gains[name]:.4f}\n")
        write_text_atomic(REPO / "cfg" / f"{name}_matched.yaml", text)
        print(f"wrote cfg/{name}_matched.yaml (box: {gains[name]:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("matched_gains.py", lambda: format_help(__doc__, KEYS), main))
