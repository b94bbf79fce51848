"""An official split from list files (``convert.py voc train_list=FILE``), and a val split carved out of the
train list only (``val=F seed=N``): on the real raccoon dataset (skipped when ../shared/datasets, relative to
the repository root, is absent) and on small hand-made fixtures (CSV and text lists, an image in two lists, a
listed name without an image, an image in no list, options that do not go together).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from boxloss.cli.convert import main as convert_main
from boxloss.data.yolo_format import check_dataset
from helpers import REPO, assert_refused, run_in_process

RACCOON = REPO.parent / "shared" / "datasets" / "raccoon"
needs_raccoon = pytest.mark.skipif(not RACCOON.is_dir(), reason=f"shared dataset {RACCOON} not present on this machine")


def names_in(out: Path, split: str) -> set[str]:
    return {p.name for p in (out / "images" / split).iterdir()} if (out / "images" / split).is_dir() else set()


def csv_names(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row["filename"] for row in csv.DictReader(handle)]


# ------------------------------------------------------------------------------------------------------ raccoon
@pytest.fixture(scope="module")
def raccoon(tmp_path_factory):
    """The README's one raccoon command, run as written (dataset paths absolute, out= in a temporary folder)."""
    if not RACCOON.is_dir():
        pytest.skip(f"shared dataset {RACCOON} not present on this machine")
    work = tmp_path_factory.mktemp("raccoon")
    args = ["voc", f"annotations={RACCOON / 'annotations'}", f"images={RACCOON / 'images'}",
            f"train_list={RACCOON / 'data/train_labels.csv'}", f"test_list={RACCOON / 'data/test_labels.csv'}",
            "val=0.125", "seed=0", "out=datasets/raccoon-yolo"]
    result = run_in_process("scripts/convert.py", args, work, timeout=300)
    assert result.returncode == 0, result.stderr
    return work / "datasets" / "raccoon-yolo", result.stdout


@needs_raccoon
def test_raccoon_official_test_split_untouched_and_val_carved_out_of_train(raccoon):
    out, stdout = raccoon
    train_csv, test_csv = csv_names(RACCOON / "data/train_labels.csv"), csv_names(RACCOON / "data/test_labels.csv")
    assert len(train_csv) == 173 and len(set(train_csv)) == 160 and len(set(test_csv)) == 40  # one row per box
    train, val, test = (names_in(out, split) for split in ("train", "val", "test"))
    assert test == set(test_csv)  # the official test split, exactly
    assert train | val == set(train_csv) and not train & val  # val comes out of the official train split only
    assert (len(train), len(val), len(test)) == (140, 20, 40)  # val = round(0.125 * 160)
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["images_per_split"] == {"train": 140, "val": 20, "test": 40}
    assert report["boxes_read"] == report["boxes_written"] == 217 and report["dropped"] == report["clipped"] == []
    assert sum(report["boxes_per_class_per_split"]["test"].values()) == len(test_csv) == 44
    assert report["split_lists"]["train"]["rows"] == 173 and report["split_lists"]["train"]["images"] == 160
    assert report["split_lists"]["test"]["file"] == str(RACCOON / "data/test_labels.csv")
    assert "val carved out of the train list" in report["split_rule"] and "seed 0" in report["split_rule"]
    assert report["unlisted_images"] == [] and report["warnings"] == []
    assert "images  200 (train 140, val 20, test 40)" in stdout
    assert check_dataset(str(out / "data.yaml"), ("train", "val", "test")).names == ["raccoon"]


@needs_raccoon
def test_raccoon_hand_checked_box(raccoon):
    """raccoon-17.jpg (259 x 194), CSV and XML: xmin 95, ymin 60, xmax 167, ymax 118 (1-based inclusive), so the
    pixel-edge box is 94, 59, 167, 118."""
    out, _ = raccoon
    label = next(out.glob("labels/*/raccoon-17.txt"))
    values = [float(v) for v in label.read_text().split()]
    assert values == pytest.approx([0, (94 + 167) / 2 / 259, (59 + 118) / 2 / 194, 73 / 259, 59 / 194], abs=5e-7)


# --------------------------------------------------------------------------------------------- small fixtures
def voc_xml(stem: str, name: str) -> str:
    return (f"<annotation><filename>{stem}.jpg</filename><size><width>64</width><height>48</height></size>"
            f"<object><name>{name}</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>30</xmax><ymax>20</ymax>"
            "</bndbox></object></annotation>")


def folders(root: Path, count: int = 12) -> tuple[Path, Path]:
    """annots/i00..i11.xml + images/i00..i11.jpg; classes a (even) and b (odd)."""
    annots, images = root / "annots", root / "images"
    annots.mkdir(parents=True)
    images.mkdir()
    for k in range(count):
        Image.new("RGB", (64, 48), (10 * k, 0, 0)).save(images / f"i{k:02d}.jpg")
        (annots / f"i{k:02d}.xml").write_text(voc_xml(f"i{k:02d}", "ab"[k % 2]))
    return annots, images


def write_csv(path: Path, names: list[str]) -> Path:
    path.write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n"
                    + "".join(f"{n},64,48,x,2,2,30,20\n" for n in names))
    return path


def voc_args(root: Path, *extra: str, out: str = "deep/out") -> list[str]:
    return ["voc", f"annotations={root / 'annots'}", f"images={root / 'images'}", *extra, f"out={root / out}"]


def run(root: Path, *extra: str, out: str = "deep/out") -> int:
    return convert_main(voc_args(root, *extra, out=out))


def test_csv_and_text_lists_with_a_carved_val(tmp_path, capsys):
    folders(tmp_path)
    train = write_csv(tmp_path / "train.csv", [f"i{k:02d}.jpg" for k in range(8) for _ in range(1 + k % 3)])
    (tmp_path / "test.txt").write_text("# the official test images, by stem or name\ni08\ni09.jpg\n\ni10\ni11\ni11\n")
    status = run(tmp_path, f"train_list={train}", f"test_list={tmp_path / 'test.txt'}", "val=0.25", "seed=3")
    assert status == 0, capsys.readouterr().err
    out = tmp_path / "deep/out"
    train_names, val_names = names_in(out, "train"), names_in(out, "val")
    assert names_in(out, "test") == {"i08.jpg", "i09.jpg", "i10.jpg", "i11.jpg"}
    assert train_names | val_names == {f"i{k:02d}.jpg" for k in range(8)} and len(val_names) == 2
    assert {int(n[1:3]) % 2 for n in val_names} == {0, 1}  # stratified: both classes in val
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["split_lists"]["train"]["rows"] == 15 and report["split_lists"]["train"]["images"] == 8
    assert report["split_lists"]["test"]["rows"] == 5 and report["split_lists"]["test"]["images"] == 4
    again = tmp_path / "again"
    assert run(tmp_path, f"train_list={train}", f"test_list={tmp_path / 'test.txt'}", "val=0.25", "seed=3",
               out="again") == 0
    assert names_in(again, "val") == val_names  # the same seed, the same val


def test_lists_without_val_keep_exactly_the_listed_splits(tmp_path, capsys):
    folders(tmp_path)
    (tmp_path / "train.txt").write_text("".join(f"i{k:02d}\n" for k in range(6)))
    (tmp_path / "val.txt").write_text("i06\ni07\n")
    assert run(tmp_path, f"train_list={tmp_path / 'train.txt'}", f"val_list={tmp_path / 'val.txt'}") == 0
    captured = capsys.readouterr()
    out = tmp_path / "deep/out"
    assert names_in(out, "train") == {f"i{k:02d}.jpg" for k in range(6)}
    assert names_in(out, "val") == {"i06.jpg", "i07.jpg"} and not (out / "images/test").exists()
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["unlisted_images"] == ["i08.jpg", "i09.jpg", "i10.jpg", "i11.jpg"]
    assert report["images"] == 8 and report["boxes_read"] == report["boxes_written"] == 8
    assert "4 annotated images are in no split list and were left out" in captured.out
    assert "left out, in no split list (4): i08.jpg" in captured.out


@pytest.mark.parametrize("lists, extra, message", [
    ({"train": "train.csv", "test": "both.txt"}, [],
     "i03.jpg is in two splits: train ({root}/train.csv) and test ({root}/both.txt, line 2)"),
    ({"train": "missing.txt"}, [], "{root}/missing.txt: line 2: 'i99' matches no annotated image"),
    ({"train": "train.csv", "test": "both.txt"}, ["test=0.2"], "test= with split lists"),
    ({"train": "train.csv", "val": "val.txt"}, ["val=0.2"], "val=0.2 with val_list=: val comes from its list"),
    ({"test": "val.txt"}, ["val=0.2"], "val=0.2 carves val out of the train list, and no train_list=FILE"),
    ({"train": "train.csv"}, ["seed=1"], "seed=1 without val="),
    ({"train": "train.csv"}, ["split=all"], "split=all puts every image into one split"),
    ({"dev": "train.csv"}, [], "unknown key 'dev_list' (did you mean"),
    ({"train": "nocolumn.csv"}, [], "{root}/nocolumn.csv: no 'filename' column (its columns: name, class)"),
    ({"train": "absent.csv"}, [], "train_list={root}/absent.csv: file not found"),
    ({"train": "latin1.txt"}, [], "{root}/latin1.txt: not UTF-8 text"),
    ({"train": "train.csv", "test": "val.txt", "val": "val.txt"}, [], "i06.jpg is in two splits"),
])
def test_bad_split_lists_one_line_exit_2_nothing_written(tmp_path, lists, extra, message):
    folders(tmp_path)
    write_csv(tmp_path / "train.csv", ["i00.jpg", "i01.jpg", "i02.jpg", "i03.jpg", "i03.jpg"])
    (tmp_path / "both.txt").write_text("i04\ni03.jpg\n")
    (tmp_path / "missing.txt").write_text("i00\ni99\n")
    (tmp_path / "val.txt").write_text("i06\n")
    (tmp_path / "nocolumn.csv").write_text("name,class\ni00.jpg,a\n")
    (tmp_path / "latin1.txt").write_bytes("i00\ncaf\xe9\n".encode("latin-1"))
    options = [f"{split}_list={tmp_path / file}" for split, file in lists.items()]
    assert_refused("boxloss.cli.convert", voc_args(tmp_path, *options, *extra), message.format(root=tmp_path),
                   cwd=tmp_path)

