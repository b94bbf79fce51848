"""Train YOLOv8 with the box loss chosen by name.

    python train.py cfg=eiou.yaml                       # a bare name is looked up in cfg/
    python train.py cfg=focal_eiou.yaml epochs=5 imgsz=160 seed=1
    python train.py cfg=ciou.yaml data=path/to/data.yaml model=path/to/yolov8n.pt
    python train.py resume=runs/train/eiou/weights/last.pt

Resolution: cfg/default.yaml < the cfg file < key=value overrides. A bad key or value exits with status 2
and one line naming the problem, before any run directory is created.
"""

import sys

from boxloss.options import ConfigError


def main(argv: list[str]) -> int:
    from boxloss.yolo import experiment, run

    try:
        overrides = experiment.parse_overrides(argv)
        resume = overrides.get("resume")
        if isinstance(resume, str) and resume:
            if len(overrides) > 1:
                raise ConfigError("resume=<last.pt> takes no other keys: the run's own settings are used")
            experiment.check_resume(resume)
            save_dir = run.resume(resume)
        else:
            save_dir = run.train(experiment.load_experiment(argv))
    except ConfigError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    print(f"train.py: run directory {save_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
