"""A COCO instance's segmentation as the one polygon a YOLO segment line holds, as ultralytics' COCO converter makes it.

ultralytics 8.4.190 (``ultralytics/data/converter.py``, ``convert_coco(use_segments=True)``), followed step by step so
that the labels written here are the ones its own converter writes (tested against it on coco128):

- the polygons of the annotation that have at least three points (an even number of at least 6 coordinates);
- an RLE mask (a non-crowd object annotated by a mask, ``segmentation = {size, counts}``) becomes the outer contours
  of the mask (OpenCV ``findContours``, ``RETR_EXTERNAL``, ``CHAIN_APPROX_SIMPLE``; points at pixel indices);
- several polygons (an object split by an occluder) are joined into one by :func:`merge_polygons`: each is linked to
  the next at their two closest vertices, and the outline walks out along each link and back along it, so the links
  are zero-width bridges that enclose no area.

Where ultralytics writes the object's box as a rectangle-shaped "polygon" when nothing usable is left, boxloss drops
the object and reports it (reason ``no_polygon``): a rectangle would teach and score the mask head on a mask the
object does not have.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["closest_vertices", "merge_polygons", "rle_polygons", "segment_polygon", "usable_polygons"]


def closest_vertices(first: np.ndarray, second: np.ndarray) -> tuple[int, int]:
    """``(i, j)`` of the closest pair of vertices ``first[i]``, ``second[j]`` ((N, 2) and (M, 2) arrays); the first
    such pair in row-major order on a tie (ultralytics' ``min_index``)."""
    squared_distances = ((first[:, None, :] - second[None, :, :]) ** 2).sum(-1)  # (N, M)
    i, j = np.unravel_index(np.argmin(squared_distances, axis=None), squared_distances.shape)
    return int(i), int(j)


def merge_polygons(polygons: Sequence[Sequence[float]]) -> np.ndarray:
    """Several polygons ``[x1, y1, x2, y2, ...]`` joined into one (P, 2) outline through zero-width bridges.

    ultralytics' ``merge_multi_segment``: polygon k is linked to polygon k + 1 at their closest vertices; a first
    pass walks every polygon from its first link around itself, back to that vertex (the first and last polygons
    whole, a middle one as far as its second link), and a second pass, in reverse order, walks the middle polygons
    from their second link on, so the outline returns along every bridge it went out on.
    """
    segments = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons]
    links: list[list[int]] = [[] for _ in segments]
    for k in range(1, len(segments)):
        i, j = closest_vertices(segments[k - 1], segments[k])
        links[k - 1].append(i)
        links[k].append(j)
    last = len(segments) - 1
    pieces = []
    for k, link in enumerate(links):
        if len(link) == 2 and link[0] > link[1]:  # a middle polygon walked backwards keeps its links in order
            link = [len(segments[k]) - 1 - v for v in link]
            segments[k] = segments[k][::-1]
        segments[k] = np.roll(segments[k], -link[0], axis=0)
        segments[k] = np.concatenate([segments[k], segments[k][:1]])  # closed: back at the first link
        pieces.append(segments[k] if k in (0, last) else segments[k][:link[1] - link[0] + 1])
    for k in range(last - 1, 0, -1):  # back through the middle polygons, from their second link on
        pieces.append(segments[k][abs(links[k][1] - links[k][0]):])
    return np.concatenate(pieces)


def usable_polygons(segmentation: Any) -> list[list[float]]:
    """The polygons of a COCO polygon segmentation that have at least three points (lists of an even number of at
    least 6 numbers); [] for anything else."""
    if not isinstance(segmentation, list):
        return []
    return [list(p) for p in segmentation
            if isinstance(p, list) and len(p) >= 6 and not len(p) % 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)]


def rle_polygons(segmentation: dict, height: int, width: int) -> list[list[float]]:
    """The outer contours of an RLE mask (compressed or not) as polygons of at least three points."""
    import cv2
    from pycocotools import mask as mask_utils

    rle = segmentation
    if isinstance(segmentation.get("counts"), list):  # uncompressed, as COCO's crowd regions are written
        rle = mask_utils.frPyObjects(segmentation, height, width)
    mask = np.ascontiguousarray(mask_utils.decode(rle), dtype=np.uint8)
    contours = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
    return usable_polygons([c.ravel().astype(float).tolist() for c in contours])


def segment_polygon(segmentation: Any, height: int, width: int) -> tuple[np.ndarray | None, str]:
    """The one (P, 2) pixel polygon of a non-crowd annotation's segmentation, and how it was made: ``"polygon"``,
    ``"joined"`` (several polygons merged), ``"rle"`` (contours of a mask); ``(None, "no_polygon")`` when the
    segmentation holds no polygon of three points."""
    polygons, source = usable_polygons(segmentation), "polygon"
    if not polygons and isinstance(segmentation, dict) and list(segmentation.get("size") or []) == [height, width]:
        polygons, source = rle_polygons(segmentation, height, width), "rle"
    if not polygons:
        return None, "no_polygon"
    if len(polygons) == 1:
        return np.asarray(polygons[0], dtype=np.float64).reshape(-1, 2), source
    return merge_polygons(polygons), "joined" if source == "polygon" else source
