"""Datasets: the YOLO format read and written in one place (:mod:`.yolo_format`), the embedded datasets
(:mod:`.embedded`, names a config can use as ``data:``) and their deterministic generator (:mod:`.synthetic`)."""
