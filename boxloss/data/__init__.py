"""Datasets for boxloss: an embedded, deterministic synthetic detection dataset (no download).

See :mod:`boxloss.data.synthetic`. Names are imported lazily so that
``python -m boxloss.data.synthetic`` runs cleanly.
"""

__all__ = ["CLASS_NAMES", "describe", "ensure_dataset", "generate", "render_sample"]


def __getattr__(name):
    if name in __all__:
        from . import synthetic

        return getattr(synthetic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
