"""Inputs shared by the tests and the project's own benchmarks (fvcore's ``tests/bm_*.py`` reuse their tests' setup
in the same way): random aligned box pairs (:mod:`.boxes`) and random COCO ground truth with detections
(:mod:`.detections`). Pure torch / numpy."""
