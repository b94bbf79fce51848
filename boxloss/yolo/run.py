"""Run an experiment (:func:`~boxloss.yolo.experiment.load_experiment`): train it through :class:`BoxLossYOLO`, and
record it in the run directory (``boxloss.yaml``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from .._io import write_yaml_atomic
from .experiment import Experiment, train_arguments
from .api import BoxLossYOLO


def _record_experiment(experiment: dict[str, Any]):
    """Callback writing ``boxloss.yaml`` (the experiment, the train arguments and versions) into the new run
    directory."""

    def write(trainer) -> None:
        import ultralytics

        from .. import __version__

        record = {"experiment": experiment, "train_args": {k: v for k, v in vars(trainer.args).items()},
                  "versions": {"boxloss": __version__, "ultralytics": ultralytics.__version__}}
        write_yaml_atomic(Path(trainer.save_dir) / "boxloss.yaml", record)

    return write


def train(experiment: Experiment) -> Path:
    """Train the experiment; returns the run directory (weights/best.pt, results.csv, boxloss.yaml, ...). The
    trainer gets the experiment's resolved options with its arguments, so nothing resolves them again."""
    model = BoxLossYOLO(experiment.settings["model"])
    model.add_callback("on_pretrain_routine_start", _record_experiment(experiment.settings))
    trainer = partial(model.task_map[model.task]["trainer"], boxloss_options=experiment.options)
    model.train(trainer=trainer, **train_arguments(experiment.settings))
    return Path(model.trainer.save_dir)


def resume(checkpoint: str | Path) -> Path:
    """Resume an interrupted run from its ``last.pt`` with the project's classes and settings intact."""
    model = BoxLossYOLO(str(checkpoint))
    model.train(resume=str(checkpoint))
    return Path(model.trainer.save_dir)
