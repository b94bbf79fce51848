"""Converters stay inside: a hostile dataset cannot make convert.py or prepare_coco.py read, link or write a file
outside its own folders.

Every probe runs the real command (scripts/convert.py, scripts/prepare_coco.py, as ``__main__`` in the test
process: helpers.run_in_process) on a tiny dataset that names a file outside its images folder -- a VOC
``<filename>`` or COCO ``file_name`` with ``..``, an absolute path, a symlink inside the images folder pointing out, a
FIFO, a file name without an image suffix -- or a split or class list that is not a name. Each asserts exit status
2, one line ``<command>.py: error: ...`` naming the XML file or JSON entry and the reason, and that nothing new
exists anywhere: the whole temporary tree (the dataset, the "secret" outside it, the working directory, the folder
next to ``out=``) and the repository's top level are listed before and after. The secret is a valid JPEG, so a
converter that followed the path would succeed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from helpers import REPO, assert_refused, run_in_process


def top_level() -> set[str]:
    """The repository's top level (where a relative path gone wrong would land)."""
    return {str(p) for p in REPO.iterdir()}


def jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (200, 10, 10)).save(path)
    return path


def voc_xml(filename: str) -> str:
    return (f"<annotation><filename>{filename}</filename><size><width>64</width><height>48</height></size>"
            "<object><name>cat</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>30</xmax><ymax>20</ymax></bndbox>"
            "</object></annotation>")


def voc_folder(root: Path, filename: str = "a.jpg", image: str | None = "a.jpg") -> Path:
    """A VOC folder with ids a and b in ImageSets/Main/train.txt; a's XML names ``filename``."""
    voc = root / "voc"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    if image:
        jpeg(voc / "JPEGImages" / image)
    jpeg(voc / "JPEGImages" / "b.jpg")
    (voc / "Annotations" / "a.xml").write_text(voc_xml(filename))
    (voc / "Annotations" / "b.xml").write_text(voc_xml("b.jpg"))
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    return voc


def labelimg(root: Path, filename: str = "a.jpg", image: str | None = "a.jpg") -> tuple[Path, Path]:
    """LabelImg folders annots/{a,b,c,d}.xml + images/{a,b,c,d}.jpg; a's XML names ``filename``."""
    annots, images = root / "annots", root / "images"
    annots.mkdir(parents=True)
    for stem in "abcd":
        if stem != "a" or image:
            jpeg(images / (image if stem == "a" else f"{stem}.jpg"))
        (annots / f"{stem}.xml").write_text(voc_xml(filename if stem == "a" else f"{stem}.jpg"))
    return annots, images


def coco_json(root: Path, file_name: str, name: str = "instances_minival.json") -> Path:
    data = {"images": [{"id": 1, "file_name": "ok.jpg", "width": 64, "height": 48},
                       {"id": 7, "file_name": file_name, "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 1, 20, 20], "iscrowd": 0}]}
    path = root / "annotations" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def coco_images(root: Path) -> Path:
    jpeg(root / "imgs" / "ok.jpg")
    return root / "imgs"


# Each case: (builder(root, secret) -> command line after the script, script, expected words in the error line).
def voc_filename_dotdot(root, secret):
    voc = voc_folder(root, filename="../../secret/secret.jpg")
    return ["voc", f"src={voc}", "copy=true"]


def voc_filename_absolute(root, secret):
    voc = voc_folder(root, filename=str(secret))
    return ["voc", f"src={voc}", "copy=true"]


def voc_symlink_out(root, secret):
    voc = voc_folder(root, image=None)
    os.symlink(secret, voc / "JPEGImages" / "a.jpg")
    return ["voc", f"src={voc}", "copy=true"]


def voc_fifo(root, secret):
    voc = voc_folder(root, image=None)
    os.mkfifo(voc / "JPEGImages" / "a.jpg")  # reading it would block the converter forever
    return ["voc", f"src={voc}"]


def voc_no_image_suffix(root, secret):
    """A file name without a dot: the label path used to be cut at the last dot of the *output folder*."""
    voc = voc_folder(root, filename="a")
    (voc / "JPEGImages" / "a").write_bytes((voc / "JPEGImages" / "a.jpg").read_bytes())
    return ["voc", f"src={voc}"]


def voc_imagesets_id(root, secret):
    voc = voc_folder(root)
    (secret.parent / "x.xml").write_text(voc_xml("x.jpg"))
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\n../../secret/x\n")
    return ["voc", f"src={voc}"]


def labelimg_filename_dotdot(root, secret):
    annots, images = labelimg(root, filename="../secret/secret.jpg")
    return ["voc", f"annotations={annots}", f"images={images}", "copy=true"]


def labelimg_filename_absolute(root, secret):
    annots, images = labelimg(root, filename=str(secret))
    return ["voc", f"annotations={annots}", f"images={images}"]


def labelimg_symlink_out(root, secret):
    annots, images = labelimg(root, image=None)
    os.symlink(secret, images / "a.jpg")
    return ["voc", f"annotations={annots}", f"images={images}", "copy=true"]


def coco_dotdot(root, secret):
    return ["coco", f"images={coco_images(root)}", f"json={coco_json(root, '../secret/secret.jpg')}", "copy=true"]


def coco_absolute(root, secret):
    return ["coco", f"images={coco_images(root)}", f"json={coco_json(root, str(secret))}"]


def coco_symlink_out(root, secret):
    images = coco_images(root)
    os.symlink(secret, images / "cat.jpg")
    return ["coco", f"images={images}", f"json={coco_json(root, 'cat.jpg')}", "copy=true"]


def coco_folder_as_file(root, secret):
    images = coco_images(root)
    (images / "dir.jpg").mkdir()
    return ["coco", f"images={images}", f"json={coco_json(root, 'dir.jpg')}"]


def coco_split_path(root, secret):
    jpeg(root / "imgs" / "x.jpg")
    return ["coco", f"images={coco_images(root)}", f"json={coco_json(root, 'x.jpg')}", "split=../x"]


def voc_split_path(root, secret):
    annots, images = labelimg(root)
    return ["voc", f"annotations={annots}", f"images={images}", "split=../x"]


def voc_split_dots(root, secret):
    return ["voc", f"src={voc_folder(root)}", "split=.."]


def voc_classes_empty(root, secret):
    annots, images = labelimg(root)
    return ["voc", f"annotations={annots}", f"images={images}", "classes=cat,,dog"]


def voc_classes_twice(root, secret):
    annots, images = labelimg(root)
    return ["voc", f"annotations={annots}", f"images={images}", "classes=cat,dog,cat"]


def coco_layout(root: Path, secret: Path, val_file_name: str) -> Path:
    coco = root / "coco"
    for split in ("train2017", "val2017"):
        jpeg(coco / split / "ok.jpg")
    jpeg(coco / "train2017" / "t.jpg")
    coco_json(coco, "t.jpg", "instances_train2017.json")
    coco_json(coco, val_file_name, "instances_val2017.json")
    return coco


def prepare_dotdot(root, secret):
    return [f"coco={coco_layout(root, secret, '../../secret/secret.jpg')}", "copy=true"]


def prepare_absolute(root, secret):
    return [f"coco={coco_layout(root, secret, str(secret))}"]


def prepare_symlink_out(root, secret):
    coco = coco_layout(root, secret, "cat.jpg")
    os.symlink(secret, coco / "val2017" / "cat.jpg")
    return [f"coco={coco}", "copy=true"]


def prepare_split_path(root, secret):
    return [f"coco={coco_layout(root, secret, 't.jpg')}", "splits=train2017,../val2017"]


CONVERT, PREPARE = "scripts/convert.py", "scripts/prepare_coco.py"
CASES = [
    (voc_filename_dotdot, CONVERT, "a.xml: <filename> '../../secret/secret.jpg': its '..' leave the images folder"),
    (voc_filename_absolute, CONVERT, "a.xml: <filename> '{secret}': is an absolute path"),
    (voc_symlink_out, CONVERT, "a.xml: image 'a.jpg': resolves outside the images folder"),
    (voc_fifo, CONVERT, "a.xml: image 'a.jpg': {root}/voc/JPEGImages/a.jpg is not a regular file"),
    (voc_no_image_suffix, CONVERT, "a.xml: image 'a': a is not an image file name"),
    (voc_imagesets_id, CONVERT, "train.txt: id '../../secret/x' is not a file name"),
    (labelimg_filename_dotdot, CONVERT, "a.xml: <filename> '../secret/secret.jpg': its '..' leave the images"),
    (labelimg_filename_absolute, CONVERT, "a.xml: <filename> '{secret}': is an absolute path"),
    (labelimg_symlink_out, CONVERT, "a.xml: image 'a.jpg': resolves outside the images folder"),
    (coco_dotdot, CONVERT, "instances_minival.json: image id 7 (file_name '../secret/secret.jpg'): its '..' leave"),
    (coco_absolute, CONVERT, "instances_minival.json: image id 7 (file_name '{secret}'): is an absolute path"),
    (coco_symlink_out, CONVERT, "image id 7 (file_name 'cat.jpg'): resolves outside the images folder"),
    (coco_folder_as_file, CONVERT, "image id 7 (file_name 'dir.jpg'): {root}/imgs/dir.jpg is not a regular file"),
    (coco_split_path, CONVERT, "split '../x': must be a folder name"),
    (voc_split_path, CONVERT, "split '../x': must be a folder name"),
    (voc_split_dots, CONVERT, "split '..': must be a folder name"),
    (voc_classes_empty, CONVERT, "classes=cat,,dog: class 1 has an empty name"),
    (voc_classes_twice, CONVERT, "classes=cat,dog,cat: 'cat' is listed twice"),
    (prepare_dotdot, PREPARE, "instances_val2017.json: image id 7 (file_name '../../secret/secret.jpg'): its '..'"),
    (prepare_absolute, PREPARE, "instances_val2017.json: image id 7 (file_name '{secret}'): is an absolute path"),
    (prepare_symlink_out, PREPARE, "image id 7 (file_name 'cat.jpg'): resolves outside the images folder"),
    (prepare_split_path, PREPARE, "split '../val2017': must be a folder name"),
]


@pytest.mark.parametrize("build, script, message", CASES, ids=[case[0].__name__ for case in CASES])
def test_a_reference_out_of_the_dataset_is_refused_and_nothing_is_written(tmp_path, build, script, message):
    root = tmp_path / "dataset"
    secret = jpeg(tmp_path / "secret" / "secret.jpg")
    work = tmp_path / "work"
    work.mkdir()
    args = [*build(root, secret), "out=deep/out"]
    before = top_level()
    assert_refused(script, args, message.format(root=root, secret=secret), cwd=work, watched=(tmp_path,),
                   timeout=120)
    assert top_level() == before


def test_references_that_stay_inside_still_convert(tmp_path):
    """The refusals are not blanket: ``./a.jpg``, ``sub/../b.jpg``, a file in a subfolder and a symlink to another
    image inside the folder are all converted; a COCO ``file_name`` in a subfolder keeps it in the output."""
    voc = voc_folder(tmp_path / "d", filename="./a.jpg")
    (voc / "Annotations" / "b.xml").write_text(voc_xml("sub/../b.jpg"))
    jpeg(voc / "JPEGImages" / "sub" / "c.jpg")
    os.symlink("sub/c.jpg", voc / "JPEGImages" / "d.jpg")
    (voc / "Annotations" / "c.xml").write_text(voc_xml("sub/c.jpg"))
    (voc / "Annotations" / "d.xml").write_text(voc_xml("d.jpg"))
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\nb\nc\nd\n")
    result = run_in_process(CONVERT, ["voc", f"src={voc}", "out=out"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in (out / "labels").rglob("*.txt")) == [
        "labels/train/a.txt", "labels/train/b.txt", "labels/train/d.txt", "labels/train/sub/c.txt"]
    assert (out / "images/train/sub/c.jpg").is_symlink()

    images = coco_images(tmp_path / "c")
    jpeg(images / "deeper" / "x.jpg")
    json_path = coco_json(tmp_path / "c", "deeper/x.jpg")
    result = run_in_process(CONVERT, ["coco", f"images={images}", f"json={json_path}", "out=coco"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "coco/labels/minival/deeper/x.txt").read_text().startswith("0 ")
    assert (tmp_path / "coco/images/minival/deeper/x.jpg").is_symlink()
