"""Train YOLO with the box loss chosen by name.

    python train.py cfg=eiou.yaml                       # a bare name is looked up in cfg/
    python train.py cfg=focal_eiou.yaml epochs=5 imgsz=160 seed=1
    python train.py cfg=ciou.yaml data=path/to/data.yaml model=path/to/yolov8n.pt
    python train.py resume=runs/train/eiou/weights/last.pt

Resolution: cfg/default.yaml < the cfg file < key=value overrides; any ultralytics train key is accepted besides
the project's keys below. A bad key or value exits with status 2 and one line naming the problem, before any run
directory is created.
"""

from __future__ import annotations

import sys

from .. import options
from ..keyvalues import format_help, run_cli, split_keyvalues
from ..errors import ConfigError

PROG = "train.py"


def help_text() -> str:
    from ..yolo.experiment import ENTRY_KEYS

    return format_help(__doc__, {**ENTRY_KEYS, **options.all_options()}, "keys (besides ultralytics' train keys)")


def _main(argv: list[str]) -> int:
    from ..yolo import run
    from ..yolo.experiment import check_resume, load_experiment, unreadable_images_warning

    overrides = split_keyvalues(argv)
    resume = overrides.get("resume")
    if resume is not None:
        if not isinstance(resume, str) or not resume:
            raise ConfigError(f"resume={resume!r} must be the path of a run's last.pt")
        if len(overrides) > 1:
            raise ConfigError("resume=<last.pt> takes no other keys: the run's own settings are used")
        check_resume(resume)
        save_dir = run.resume(resume)
    else:
        experiment = load_experiment(overrides)  # the config files and the overrides, merged and checked, once
        warning = unreadable_images_warning(experiment.settings.get("data"))
        if warning:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        save_dir = run.train(experiment)
    print(f"{PROG}: run directory {save_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, help_text, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
