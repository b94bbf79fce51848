"""Datasets from a stranger, through the real commands.

Among its images, things that are not files: a FIFO (opening it for reading waits for a writer forever), a device
(reads without end), a socket or a folder. ``train.py`` and ``val.py`` never open one: the split's image list is
checked with the converters' rule (``boxloss._io.irregular_file``) before any image is read, and the command refuses
with one line (ultralytics would open every listed image).

Segmentation and pose labels that ultralytics would drop silently ("1 corrupt": a keypoint visibility of -1) or
train on (a polygon vertex outside the image whose box still fits): refused before any run directory, naming the
file and line, as box labels are.

A regression must fail, not hang: every FIFO here is watched (:func:`watched_fifo`) by a thread that notices a
reader (a non-blocking open for writing succeeds only while someone has it open for reading), records it and closes
at once, so the reader gets end-of-file and the command goes on; the commands also run under a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import threading
from pathlib import Path

import pytest

from helpers import assert_refused

TINY = ["epochs=1", "imgsz=64", "batch=8", "workers=0", "plots=False"]


@contextlib.contextmanager
def watched_fifo(path: Path):
    """Make a FIFO at ``path``; yields a list that holds True once anything opened it for reading (that reader is
    given end-of-file at once, so nothing blocks)."""
    os.mkfifo(path)
    opened, stop = [], threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while nobody reads
            except OSError:
                continue
            if stat.S_ISFIFO(os.fstat(fd).st_mode):  # not a file put in its place since
                opened.append(True)
            os.close(fd)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained detection checkpoint (nc=5): val.py's checks read only its head."""
    import boxloss.yolo  # noqa: F401  (offline settings)
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("special") / "model.pt"
    YOLO("yolov8n.yaml").save(path)
    return path


def dataset_copy(mini_data: Path, root: Path) -> Path:
    """shapes-mini as a dataset folder of its own (a path dataset, as a stranger's would be)."""
    dataset = root / "dataset"
    for kind in ("images", "labels"):
        shutil.copytree(mini_data.parent / kind, dataset / kind)
    (dataset / "data.yaml").write_text(f"path: {dataset}\ntrain: images/train\nval: images/val\ntest: images/train\n"
                                       "names: [rectangle, ellipse, bar, ring, triangle]\n")
    return dataset


def plant(kind: str, path: Path) -> contextlib.AbstractContextManager:
    """Put a ``kind`` where an image would be; a context (the FIFO is watched while it is open)."""
    if kind == "fifo":
        return watched_fifo(path)
    if kind == "folder":
        path.mkdir()
    elif kind == "device":
        os.symlink("/dev/zero", path)  # a link to it: the kind is what the link reaches
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    return contextlib.nullcontext([])


WORDS = {"fifo": "a FIFO", "folder": "a folder", "device": "a character device", "socket": "a socket"}


@pytest.mark.slow
@pytest.mark.parametrize("entry, split", [("train.py", "train"), ("val.py", "val")])
def test_a_fifo_among_the_images_is_refused_by_the_real_command_without_opening_it(tmp_path, mini_data, checkpoint,
                                                                                    entry, split):
    """The issue's probe: ``mkfifo images/<split>/000099.png`` used to hang both commands forever, with no output."""
    dataset = dataset_copy(mini_data, tmp_path)
    fifo = dataset / "images" / split / "000099.png"
    args = {"train.py": ["cfg=eiou.yaml", f"data={dataset}/data.yaml", *TINY],
            "val.py": [f"model={checkpoint}", f"data={dataset}/data.yaml", "workers=0"]}[entry]
    with watched_fifo(fifo) as opened:
        assert_refused(entry, args, f"dataset '{dataset}/data.yaml': {split} image {fifo} is a FIFO, not a regular "
                       "image file", cwd=tmp_path, watched=(dataset,), exact=True, timeout=180)
    assert not opened, "the command opened the FIFO"


@pytest.mark.parametrize("kind", sorted(WORDS))
@pytest.mark.parametrize("entry, split", [("boxloss.cli.train", "val"), ("boxloss.cli.val", "test")])
def test_anything_but_a_regular_file_among_the_images_is_refused_in_either_split(tmp_path, mini_data, checkpoint,
                                                                                  entry, split, kind):
    """The other split of each command (val.py's split=test is the training images here), and every kind that is
    not a file: one line, nothing opened or written."""
    dataset = dataset_copy(mini_data, tmp_path)
    path = dataset / "images" / ("train" if split == "test" else split) / "000007.png"
    path.unlink()
    args = {"boxloss.cli.train": ["cfg=eiou.yaml", f"data={dataset}/data.yaml", *TINY],
            "boxloss.cli.val": [f"model={checkpoint}", f"data={dataset}/data.yaml", "split=test", "workers=0"]}[entry]
    with plant(kind, path) as opened:
        assert_refused(entry, args, f"{split} image {path} is {WORDS[kind]}, not a regular image file", cwd=tmp_path,
                       watched=(dataset,))
    assert not opened


def test_no_reader_of_the_package_opens_a_fifo(tmp_path):
    """The image header reader itself (COCO ground truth, the unreadable-image warning) never opens one either."""
    from boxloss.data.yolo_format import image_size, unreadable_images

    with watched_fifo(tmp_path / "a.png") as opened:
        with pytest.raises(OSError, match="not a readable image \\(a FIFO, not a regular file\\)"):
            image_size(tmp_path / "a.png")
        assert unreadable_images([tmp_path / "a.png"]) == [(tmp_path / "a.png", "a FIFO, not a regular file")]
    assert not opened


def test_an_embedded_dataset_holding_a_fifo_is_generated_again(tmp_path):
    """The embedded datasets are not checked image by image (they are generated here): one whose image was replaced
    by a FIFO is no longer complete, so the next use generates it afresh instead of training on it."""
    from boxloss.data.embedded import MINI
    from boxloss.data.synthetic import ensure_dataset

    root = tmp_path / "shapes-mini"
    ensure_dataset(root, **MINI, imgsz=64)
    image = root / "images" / "train" / "000003.png"
    image.unlink()
    with watched_fifo(image) as opened:
        ensure_dataset(root, **MINI, imgsz=64)
        assert image.is_file()
    assert not opened


def labelled_copy(data_yaml: Path, root: Path, line_edit) -> tuple[Path, Path]:
    """A path-dataset copy of an embedded dataset with the first label line of its first train image edited by
    ``line_edit``; ``(data.yaml, label file)``."""
    dataset = root / "dataset"
    for kind in ("images", "labels"):
        shutil.copytree(data_yaml.parent / kind, dataset / kind)
    content = data_yaml.read_text().replace(str(data_yaml.parent), str(dataset))
    (dataset / "data.yaml").write_text(content if str(dataset) in content else f"path: {dataset}\n{content}")
    label = sorted((dataset / "labels" / "train").glob("*.txt"))[0]
    lines = label.read_text().splitlines()
    label.write_text("\n".join([line_edit(lines[0]), *lines[1:]]) + "\n")
    return dataset / "data.yaml", label


def negative_visibility(line: str) -> str:
    values = line.split()
    values[7] = "-1"  # the first keypoint's visibility
    return " ".join(values)


def vertex_outside(line: str) -> str:
    values = line.split()
    values[1] = "-0.2"  # the first vertex's x: the polygon's box stays inside [0, 1] for most polygons, not all
    return " ".join(values)


@pytest.mark.parametrize("model, data, edit, what", [
    ("yolov8n-pose.yaml", "shapes-pose-mini", negative_visibility, "keypoint 1 has visibility -1: must be 0, 1 or 2"),
    ("yolov8n-seg.yaml", "shapes-seg-mini", vertex_outside, "polygon vertex 1 (-0.2 "),
])
def test_a_bad_keypoint_visibility_or_polygon_vertex_is_refused_naming_file_and_line(tmp_path, model, data, edit,
                                                                                     what):
    from boxloss.data.embedded import resolve_data

    data_yaml, label = labelled_copy(Path(resolve_data(data)), tmp_path, edit)
    assert_refused("boxloss.cli.train", ["cfg=eiou.yaml", f"model={model}", f"data={data_yaml}", *TINY],
                   f"malformed label line {label}:1: {what}", cwd=tmp_path, watched=(data_yaml.parent,))


def test_val_refuses_a_bad_keypoint_visibility_in_its_ground_truth(tmp_path):
    import boxloss.yolo  # noqa: F401  (offline settings)
    from ultralytics import YOLO

    from boxloss.data.embedded import resolve_data

    data_yaml, label = labelled_copy(Path(resolve_data("shapes-pose-mini")), tmp_path, negative_visibility)
    (data_yaml.parent / "data.yaml").write_text(data_yaml.read_text().replace("val: images/val", "val: images/train"))
    YOLO("yolov8n-pose.yaml").save(tmp_path / "pose.pt")
    assert_refused("boxloss.cli.val", [f"model={tmp_path / 'pose.pt'}", f"data={data_yaml}", "workers=0"],
                   f"{label}:1: keypoint 1 has visibility -1: must be 0, 1 or 2", cwd=tmp_path,
                   watched=(data_yaml.parent,))


# ------------------------------------------------------------------------------------------------------ converters
def voc_bomb(root: Path) -> tuple[list, str]:
    from test_convert_hostile import voc_folder, voc_xml
    from test_hard_edges import decompression_bomb

    voc = voc_folder(root)
    bomb = decompression_bomb(voc / "JPEGImages" / "c.png")
    (voc / "Annotations" / "c.xml").write_text(voc_xml("c.png").replace(
        "<size><width>64</width><height>48</height></size>", ""))
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\nb\nc\n")
    return (["voc", f"src={voc}"],
            f"{voc}/Annotations/c.xml: <size> missing and image {bomb}: not a readable image (Image size "
            "(900000000 pixels) exceeds limit")


def coco_bomb(root: Path) -> tuple[list, str]:
    from test_convert_hostile import coco_images, coco_json
    from test_hard_edges import decompression_bomb

    images = coco_images(root)
    json_path = coco_json(root, "bomb.png")
    data = json.loads(json_path.read_text())
    del data["images"][1]["width"], data["images"][1]["height"]
    json_path.write_text(json.dumps(data))
    bomb = decompression_bomb(images / "bomb.png")
    return (["coco", f"images={images}", f"json={json_path}"],
            f"{json_path}: image id 7: no width/height and {bomb}: not a readable image (Image size (900000000 "
            "pixels) exceeds limit")


def voc_latin1_split(root: Path) -> tuple[list, str]:
    from test_convert_hostile import voc_folder

    voc = voc_folder(root)
    (voc / "ImageSets" / "Main" / "train.txt").write_bytes("a\nb # caf\xe9\n".encode("latin-1"))
    return ["voc", f"src={voc}"], f"{voc}/ImageSets/Main/train.txt: not UTF-8 text (byte 0xe9 at offset 9)"


def coco_json_in(encoding: str):
    def build(root: Path) -> tuple[list, str]:
        from test_convert_hostile import coco_images, coco_json

        images = coco_images(root)
        json_path = coco_json(root, "ok.jpg")
        text = json_path.read_text().replace('"cat"', '"caf\xe9"')
        json_path.write_bytes(text.encode(encoding))
        offset = text.encode(encoding).index("\xe9".encode(encoding)) if encoding == "latin-1" else 1
        byte = 0xE9 if encoding == "latin-1" else 0
        return (["coco", f"images={images}", f"json={json_path}"],
                f"{json_path}: not UTF-8 text (byte 0x{byte:02x} at offset {offset}); save it as UTF-8")
    build.__name__ = f"coco_json_{encoding.replace('-', '')}"
    return build


CONVERTER_CASES = [voc_bomb, coco_bomb, voc_latin1_split, coco_json_in("latin-1"), coco_json_in("utf-16-le")]


@pytest.mark.parametrize("build", CONVERTER_CASES, ids=[build.__name__ for build in CONVERTER_CASES])
def test_a_converter_refuses_a_bomb_or_a_file_that_is_not_utf8_in_one_line(tmp_path, build):
    """A decompression bomb among images without a recorded size (VOC without <size>, COCO without width/height) is
    unreadable by train and val's rule (``yolo_format.image_size``), not a traceback; a split list or COCO JSON
    that is not UTF-8 (Latin-1, or UTF-16 without its byte-order mark) is named with the offset of its first bad
    byte. Nothing is written."""
    args, message = build(tmp_path / "dataset")
    (tmp_path / "work").mkdir()
    assert_refused("boxloss.cli.convert", [*args, "out=out"], message, cwd=tmp_path / "work", watched=(tmp_path,))


def test_the_real_commands_refuse_a_bomb_and_a_latin1_coco_json(tmp_path):
    """convert.py and prepare_coco.py themselves, once each."""
    from test_convert_hostile import coco_layout

    args, message = voc_bomb(tmp_path / "voc")
    assert_refused("scripts/convert.py", [*args, "out=out"], message, cwd=tmp_path, watched=(tmp_path,), timeout=120)
    coco = coco_layout(tmp_path / "layout", tmp_path / "unused.jpg", "ok.jpg")
    val_json = coco / "annotations" / "instances_val2017.json"
    val_json.write_bytes(val_json.read_text().replace('"cat"', '"caf\xe9"').encode("latin-1"))
    offset = val_json.read_bytes().index(b"\xe9")
    assert_refused("scripts/prepare_coco.py", [f"coco={coco}", "out=out"],
                   f"{val_json}: not UTF-8 text (byte 0xe9 at offset {offset}); save it as UTF-8", cwd=tmp_path,
                   watched=(tmp_path,), timeout=120)


def test_a_split_list_or_coco_json_with_a_byte_order_mark_is_read(tmp_path):
    """A BOM (as Windows editors save UTF-8, and UTF-16) is no part of the first id: ``a`` is found."""
    from boxloss.cli.convert import main as convert
    from test_convert_hostile import coco_images, coco_json, jpeg, voc_folder

    voc = voc_folder(tmp_path / "d")
    (voc / "ImageSets" / "Main" / "train.txt").write_bytes(b"\xef\xbb\xbfa\nb\n")
    assert convert(["voc", f"src={voc}", f"out={tmp_path / 'voc-out'}"]) == 0
    assert sorted(p.name for p in (tmp_path / "voc-out" / "labels" / "train").iterdir()) == ["a.txt", "b.txt"]
    images = coco_images(tmp_path / "c")
    jpeg(images / "two.jpg")
    json_path = coco_json(tmp_path / "c", "two.jpg")
    json_path.write_bytes(json_path.read_text().encode("utf-16"))  # with its BOM
    assert convert(["coco", f"images={images}", f"json={json_path}", f"out={tmp_path / 'coco-out'}"]) == 0
    assert (tmp_path / "coco-out" / "labels" / "minival" / "two.txt").read_text().startswith("0 ")
