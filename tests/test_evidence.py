"""The benchmark's evidence layer against hand-computed cases: Holm's adjustment and the paired t p-value, the
two-stage bootstrap over seeds and images, learning-curve checkpoints and the convergence flag, the TIDE tables,
the GPU-slot outlook, and result records that carry no machine's absolute paths."""

import json
import math
import shutil

import numpy as np
import pytest

from boxloss.benchmark.status import measured_rate, outlook
from boxloss.stats import bootstrap, curves, plots, records, report, report_folder, summary, tide_report
from boxloss.benchmark.matrix import run_matrix
from boxloss.stats.multiplicity import holm_adjust, holm_verdicts, paired_t_pvalue
from boxloss.benchmark.plan import build_plan
from boxloss.stats.records import portable_path, read_result
from boxloss.evaluation.matches import match_table

from test_benchmark import ENVIRONMENT, FakeRunner, fake_metrics, plan_for, run


# ---------------------------------------------------------------------------------------------------------------
# Holm
# ---------------------------------------------------------------------------------------------------------------
def test_holm_adjusted_pvalues_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.20 (m = 4): 4 x 0.01 = 0.04; 3 x 0.03 = 0.09; 2 x 0.04 = 0.08 -> max 0.09; 0.20
    assert holm_adjust([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert holm_adjust([0.5, None, 0.01]) == pytest.approx([0.5, None, 0.02])  # None is not counted in m
    assert holm_adjust([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1, then monotone
    verdicts = holm_verdicts({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.2, "e": None})
    assert [verdicts[k]["resolved_holm"] for k in "abcde"] == [True, False, False, False, None]
    # 0.04 and 0.03 are "resolved" uncorrected but not after Holm: the point of the correction


def test_paired_t_pvalue_by_hand():
    # d = (0.1, 0.2, 0.3): t = 0.2 / (0.1 / √3) = √12, 2 degrees of freedom, where the two-sided
    # p = 1 - t / √(2 + t²) = 1 - √(12/14) exactly
    assert paired_t_pvalue([0.1, 0.2, 0.3]) == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-12)
    assert paired_t_pvalue([0.02, 0.02]) == 0.0 and paired_t_pvalue([0.0, 0.0]) == 1.0
    assert paired_t_pvalue([0.1]) is None


def test_the_report_states_how_many_comparisons_survive_holm(tmp_path):
    def metrics(cfg, seed, splits):  # eiou: AP50 +0.02 on every seed (resolved), AP noise
        values = fake_metrics("ciou", 0, splits)["val"]
        if cfg == "eiou":
            values = {**values, "AP": values["AP"] + (0.03, 0.0, -0.03)[seed], "AP50": values["AP50"] + 0.02}
        return {split: dict(values) for split in splits}

    plan = build_plan(["cfgs=ciou,eiou", "seeds=0,1,2", "data=shapes-mini", "epochs=1", f"out={tmp_path / 'b'}"])
    outcome = run(plan, FakeRunner(metrics=metrics))
    paths = report_folder.write_summary(plan.out, list(outcome.results.values()), "ciou", log=lambda line: None)
    report = paths["report"].read_text()
    saved = json.loads(paths["summary"].read_text())
    holm = saved["multiplicity"]["val"]
    assert holm["m"] == 4 and holm["resolved_raw"] == 1 and holm["resolved_holm"] == 1  # AP50 (p = 0)
    assert "**val: 1 of 4 paired comparisons resolved after Holm**" in report
    assert saved["power"]["val"]["eiou"]["AP"]["p_holm"] == pytest.approx(1.0)  # (0.03, 0, -0.03): p = 1
    assert "after Holm" in report and " Holm p |" in report
    assert "whether these runs converged is unknown" in report  # fake runs have no results.csv


# ---------------------------------------------------------------------------------------------------------------
# Two-stage bootstrap
# ---------------------------------------------------------------------------------------------------------------
def test_seed_stage_alone_matches_the_enumerated_distribution():
    """Two seeds with differences 0 and 1 and no image variation: the mean of two draws is 0, 0.5 or 1 with
    probabilities 1/4, 1/2, 1/4, so its standard deviation is √(1/8); the image stage adds nothing."""
    resamples = 20000
    zero, one = np.zeros(10), np.ones(10)
    config = {0: (zero, np.tile(zero, (resamples, 1))), 1: (one, np.tile(one, (resamples, 1)))}
    baseline = {s: (zero, np.tile(zero, (resamples, 1))) for s in (0, 1)}
    result = bootstrap.two_stage(config, baseline, keys=("AP", "AP50"))
    assert result["n"] == 2 and result["AP"]["mean"] == pytest.approx(0.5)
    assert result["AP"]["seeds"]["std"] == pytest.approx(math.sqrt(1 / 8), abs=0.01)
    assert result["AP"]["images"]["std"] == 0.0 and result["AP"]["images_share"] == 0.0
    assert result["AP"]["both"] == result["AP"]["seeds"]  # the same seed draws, nothing else varies
    assert result["AP"]["seeds"]["ci"] == pytest.approx([0.0, 1.0])
    assert bootstrap.two_stage({0: config[0]}, baseline) == {"n": 1}


def test_image_stage_alone_matches_the_enumerated_distribution():
    """Two images; the config finds the object of image 1 only, the baseline both. Drawing 2 images: (2, 0) with
    probability 1/4 gives the config AP 1, (1, 1) 1/2 gives 51/101, (0, 2) 1/4 gives 0, and the baseline 1 always:
    the difference is 0, 51/101 - 1 or -1, whatever the seed (two identical seeds), so the seed stage adds nothing."""
    gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0} for i in (1, 2)]}
    hit = [{"image_id": i, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9 - i / 10} for i in (1, 2)]
    config_table = match_table(gt, [hit[0], {**hit[1], "bbox": [70, 70, 20, 20]}])
    baseline_table = match_table(gt, hit)
    weights = bootstrap.image_weights(2, 20000, np.random.default_rng(0))
    replicates = bootstrap.replicate_ap({"c": config_table, "b": baseline_table}, weights)
    from boxloss.evaluation.matches import ap_per_threshold

    config = {s: (ap_per_threshold(config_table), replicates["c"]) for s in (0, 1)}
    baseline = {s: (ap_per_threshold(baseline_table), replicates["b"]) for s in (0, 1)}
    result = bootstrap.two_stage(config, baseline, keys=("AP",))["AP"]
    values, probabilities = np.array([0.0, 51 / 101 - 1, -1.0]), np.array([0.25, 0.5, 0.25])
    expected_std = math.sqrt(probabilities @ values ** 2 - (probabilities @ values) ** 2)
    assert result["mean"] == pytest.approx(51 / 101 - 1)
    assert result["images"]["std"] == pytest.approx(expected_std, abs=0.01)
    assert result["seeds"]["std"] == pytest.approx(0.0, abs=1e-12) and result["images_share"] == pytest.approx(1.0)
    assert result["both"]["std"] == pytest.approx(result["images"]["std"])


def test_tables_of_different_splits_are_refused():
    gt = {"images": [{"id": i, "width": 10, "height": 10} for i in (1, 2)], "categories": [{"id": 1, "name": "a"}],
          "annotations": []}
    other = {**gt, "images": gt["images"][:1]}
    with pytest.raises(ValueError, match="not the same split"):
        bootstrap.replicate_ap({"a": match_table(gt, []), "b": match_table(other, [])}, np.ones((3, 2)))


# ---------------------------------------------------------------------------------------------------------------
# Learning curves
# ---------------------------------------------------------------------------------------------------------------
def curve(values):
    return {"epoch": list(range(1, len(values) + 1)), "mAP50-95": list(values), "mAP50": [2 * v for v in values]}


def test_checkpoints_ranks_and_convergence_by_hand():
    rising = [0.01 * e for e in range(1, 21)]  # +0.01 a epoch to the end: the last 10 % (3 epochs) gain 0.03
    early = [min(0.02 * e, 0.15) for e in range(1, 21)]  # fast, flat from epoch 8 at 0.15
    table = curves.summarize_curves({"slow": {0: curve(rising), 1: curve([v + 0.002 for v in rising])},
                                     "fast": {0: curve(early), 1: curve(early)}}, ["slow", "fast"])
    assert table["checkpoints"] == [5, 10, 15, 20]
    assert table["configs"]["slow"]["at"][5]["mAP50-95"]["mean"] == pytest.approx(0.051)
    assert table["configs"]["fast"]["at"][5]["mAP50-95"]["mean"] == pytest.approx(0.10)
    assert table["ranks"][5] == ["fast", "slow"] and table["ranks"][20] == ["slow", "fast"]  # the ranking flips
    slow, fast = table["configs"]["slow"]["convergence"], table["configs"]["fast"]["convergence"]
    assert slow["window"] == 3 and slow["gain"] == pytest.approx(0.03) and slow["converged"] is False
    assert fast["gain"] == pytest.approx(0.0, abs=1e-12) and fast["converged"] is True
    assert curves.convergence([curve([0.1, 0.2])], 2)["converged"] is None  # shorter than the window
    assert table["configs"]["slow"]["mean"]["mAP50"][0] == pytest.approx(0.022)  # 2 x (0.01 + 0.012) / 2


def test_read_curve_from_ultralytics_results_csv():
    text = ("                  epoch,                  time,  metrics/mAP50(B),  metrics/mAP50-95(B)\n"
            "                      1,                   7.2,           0.1,            0.05\n"
            "                      2,                  11.1,           0.3,            0.12\n")
    assert curves.read_curve(text) == {"epoch": [1, 2], "mAP50-95": [0.05, 0.12], "mAP50": [0.1, 0.3]}
    assert curves.read_curve("epoch,time\n1,2\n") is None and curves.read_curve("") is None


# ---------------------------------------------------------------------------------------------------------------
# TIDE tables
# ---------------------------------------------------------------------------------------------------------------
def test_tide_rows_are_paired_like_the_ap_rows():
    def record(cfg, seed, loc):
        deltas = {error: 0.01 for error in tide_report.TIDE_TYPES}
        tide = {thr: {"delta_ap": {**deltas, "Loc": loc}} for thr in tide_report.THRESHOLDS}
        return {"cfg": cfg, "seed": seed, "tide": {"test": tide}}

    results = [record("ciou", s, 0.05) for s in range(3)] + [record("eiou", s, 0.03 + 0.001 * s) for s in range(3)]
    tide = tide_report.summarize_tide(results, ["ciou", "eiou"], "ciou", ["test"])["test"]
    loc = tide["paired"]["eiou"]["AP50"]["Loc"]
    assert loc["mean"] == pytest.approx(-0.019) and loc["values"] == pytest.approx({0: -0.02, 1: -0.019, 2: -0.018})
    assert loc["resolved"] is True and loc["p_holm"] is not None
    assert tide["paired"]["eiou"]["AP75"]["Cls"]["mean"] == pytest.approx(0.0)
    assert tide["holm"]["m"] == 2 * len(tide_report.TIDE_TYPES)
    assert tide["stats"]["eiou"]["AP50"]["Loc"]["mean"] == pytest.approx(0.031)
    assert tide_report.summarize_tide([{"cfg": "ciou", "seed": 0}], ["ciou"], "ciou", ["test"]) is None
    assert plots.tide_png(tide_report.summarize_tide(results, ["ciou", "eiou"], "ciou", ["test"]), ["test"],
                          "ciou")[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------------------------------------------
# What N more minutes add; portable records
# ---------------------------------------------------------------------------------------------------------------
def test_outlook_counts_whole_seeds(tmp_path):
    plan = plan_for(tmp_path / "bench", "seeds=0,1,2", "jobs=2")
    run_matrix(build_plan(["cfgs=ciou,eiou", "seeds=0", "data=shapes-mini", "epochs=1", f"out={tmp_path / 'bench'}"]),
               FakeRunner(), log=lambda line: None, environment=ENVIRONMENT)
    view = outlook(plan, minutes=3, runs_per_hour=60)  # 3 runs: seed 1 whole, seed 2 half
    assert view.finished == ["ciou-s0", "eiou-s0"] and view.whole_seeds_now == [0]
    assert view.pending == ["ciou-s1", "eiou-s1", "ciou-s2", "eiou-s2"]
    assert view.within == ["ciou-s1", "eiou-s1", "ciou-s2"] and view.whole_seeds_then == [0, 1]
    assert "3 more minute(s) at 60 runs/h would finish 3 run(s)" in view.lines()[-1]
    with pytest.raises(ValueError):
        outlook(plan, minutes=-1, runs_per_hour=60)


def test_status_rate_is_measured_from_the_folders_finished_runs(tmp_path, capsys):
    """jobs · 3600 / mean(elapsed_s) of the finished runs; without any, the H200 figure, said so."""
    from boxloss.cli.benchmark import status_main

    keys = ["cfgs=ciou,eiou", "seeds=0,1", "data=shapes-mini", "epochs=1", "jobs=2", f"out={tmp_path / 'bench'}"]
    plan = build_plan(keys)
    assert measured_rate(plan) is None
    assert status_main(keys) == 0 and "rate 153 runs/h (the H200 measurement" in capsys.readouterr().out
    run_matrix(plan, FakeRunner(), log=lambda line: None, environment=ENVIRONMENT)
    for path, elapsed in zip(sorted((tmp_path / "bench" / "results").glob("*.json")), (100.0, 140.0, 120.0, 120.0)):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "elapsed_s": elapsed}))
    assert measured_rate(plan) == pytest.approx((2 * 3600 / 120.0, 4, 2))  # 60 runs/h, jobs=2 at once
    assert status_main([*keys, "minutes=1"]) == 0
    assert "rate 60 runs/h (measured: 4 finished run(s) of this folder at jobs=2)" in capsys.readouterr().out


def test_records_are_portable_and_summarize_works_on_a_moved_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    plan = build_plan(["cfgs=ciou,eiou", "seeds=0,1", "data=shapes-mini", "epochs=1", "out=bench"])
    run(plan, FakeRunner())
    for path in (tmp_path / "bench" / "results").glob("*.json"):
        text = path.read_text()
        assert str(tmp_path) not in text, path  # no absolute path of this machine
    record = read_result(tmp_path / "bench" / "results" / "eiou-s1.json")
    assert record["files"]["train_dir"] == "train/eiou-s1" and record["settings"]["project"] == "bench/train"
    assert record["cfg_file"].endswith("eiou.yaml") and not record["cfg_file"].startswith(str(tmp_path))
    assert "project=bench/train" in record["train_command"] and record["versions"]["boxloss"] == "test"
    assert portable_path(str(tmp_path / "a" / "b.yaml")) == "a/b.yaml" and portable_path("/elsewhere/x") == "/elsewhere/x"
    moved = tmp_path / "published" / "bench"
    shutil.copytree(tmp_path / "bench", moved)
    shutil.rmtree(tmp_path / "bench")
    paths = report_folder.write_summary(moved, records.load_results(moved / "results"), log=lambda line: None)
    assert json.loads(paths["summary"].read_text())["runs"] == ["ciou-s0", "ciou-s1", "eiou-s0", "eiou-s1"]
    # and a re-run from the project root still recognises the relative records as its own
    assert build_plan(["cfgs=ciou,eiou", "seeds=0,1", "data=shapes-mini", "epochs=1", f"out={moved}"]) is not None
    from boxloss.benchmark.results import check_existing

    assert check_existing(build_plan(["cfgs=ciou,eiou", "seeds=0,1", "data=shapes-mini", "epochs=1",
                                      f"out={moved}"])).pending == []


# ---------------------------------------------------------------------------------------------------------------
# CUDA MPS behind cuda_mps=true
# ---------------------------------------------------------------------------------------------------------------
def fake_control(tmp_path, monkeypatch, status: int = 0):
    """An nvidia-cuda-mps-control on PATH that records its arguments, its stdin and its MPS variables."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-cuda-mps-control"
    script.write_text("#!/bin/sh\n"
                      f"echo \"args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY\" >> {tmp_path / 'calls.log'}\n"
                      f"if [ -z \"$1\" ]; then cat >> {tmp_path / 'calls.log'}; fi\n"
                      f"exit {status}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    return tmp_path / "calls.log"


def test_mps_daemon_is_started_for_the_block_and_quit_after(tmp_path, monkeypatch):
    import os

    from boxloss.benchmark import cuda_mps

    calls = fake_control(tmp_path, monkeypatch)
    cuda_mps.check_available("0")
    with cuda_mps.daemon(log=lambda line: None) as values:
        pipe = values["CUDA_MPS_PIPE_DIRECTORY"]
        assert os.environ["CUDA_MPS_PIPE_DIRECTORY"] == pipe and os.path.isdir(pipe)  # the children inherit it
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ and not os.path.exists(pipe)
    assert calls.read_text().splitlines() == [f"args=-d pipe={pipe}", f"args= pipe={pipe}", "quit"]
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", "/somewhere/else")  # a daemon of the user's: used, left running
    with cuda_mps.daemon(log=lambda line: None) as values:
        assert values["CUDA_MPS_PIPE_DIRECTORY"] == "/somewhere/else"
    assert len(calls.read_text().splitlines()) == 3


def test_mps_is_refused_where_it_cannot_serve(tmp_path, monkeypatch):
    from boxloss.benchmark import cuda_mps
    from boxloss.errors import ConfigError

    fake_control(tmp_path, monkeypatch, status=1)
    with pytest.raises(ConfigError, match="nvidia-cuda-mps-control -d failed"):
        with cuda_mps.daemon(log=lambda line: None):
            pass
    with pytest.raises(ConfigError, match="give device=0"):
        cuda_mps.check_available("cpu")
    with pytest.raises(ConfigError, match="give device=0"):
        plan_for(tmp_path / "b", "cuda_mps=true", "jobs=2")
    with pytest.raises(ConfigError, match="with engine=ray start MPS on each node"):
        plan_for(tmp_path / "b", "cuda_mps=true", "engine=ray")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="nvidia-cuda-mps-control is not on PATH"):
        cuda_mps.check_available("0")


def test_mask_ap_rows_get_the_box_rows_statistics(tmp_path):
    """Results of segmentation runs carry "families": {"mask": {split: metrics}}; the summary pairs them against
    the baseline like the box rows, with Holm over the mask comparisons, and the report shows them."""
    def with_mask(record, shift):
        mask = {key: value - 0.1 + shift for key, value in record["metrics"]["val"].items()}
        return {**record, "families": {"mask": {"val": mask}}}

    plan = build_plan(["cfgs=ciou,eiou", "seeds=0,1,2", "data=shapes-mini", "epochs=1", f"out={tmp_path / 'b'}"])
    outcome = run(plan, FakeRunner())
    results = [with_mask(r, 0.01 * r["seed"] + (0.02 if r["cfg"] == "eiou" else 0.0))
               for r in outcome.results.values()]
    result = summary.summarize(results, "ciou")
    mask = result["families"]["mask"]
    assert mask["configs"] == ["ciou", "eiou"]
    assert mask["paired"]["val"]["eiou"]["AP"]["mean"] == pytest.approx(
        result["paired"]["val"]["eiou"]["AP"]["mean"] + 0.02)  # fake_metrics: eiou's box AP is +0.02 on every seed
    assert mask["power"]["val"]["eiou"]["AP50"]["resolved_holm"] is True and mask["multiplicity"]["val"]["m"] == 4
    text = report.format_report(result)
    assert "### Mask AP (segmentation, COCO segm)" in text and "(mask; 4 of 4 comparisons resolved after Holm" in text
