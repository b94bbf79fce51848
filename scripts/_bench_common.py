"""Transitional: the random boxes now live in boxloss.testing.boxes."""
from boxloss.testing.boxes import random_boxes  # noqa: F401
