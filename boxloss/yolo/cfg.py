"""Make the project's keys ordinary ultralytics config keys, and keep ultralytics from downloading a font."""

import shutil
from pathlib import Path

from ultralytics.utils import DEFAULT_CFG, DEFAULT_CFG_DICT, USER_CONFIG_DIR

from .. import options
from .._io import atomic_write


def register_config_keys() -> None:
    """Add every project key with its default to ``DEFAULT_CFG_DICT`` and ``DEFAULT_CFG`` (idempotent).

    ``get_cfg``'s alignment check, ``strip_optimizer`` and the DDP child all read ``DEFAULT_CFG_DICT``,
    so registered keys are accepted and kept everywhere.
    """
    for key, value in options.defaults().items():
        DEFAULT_CFG_DICT.setdefault(key, value)
        if not hasattr(DEFAULT_CFG, key):
            setattr(DEFAULT_CFG, key, value)


def ensure_offline_font() -> None:
    """Give ultralytics a local font so it never tries to download Arial.

    ``check_det_dataset`` (every train and val) and the plots look for ``Arial.ttf`` in ultralytics' config
    directory and download it when missing; we place matplotlib's bundled DejaVu Sans there under that
    name instead (same role, no network). A read-only config directory is left alone.
    """
    import matplotlib

    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = Path(USER_CONFIG_DIR) / name
        if not target.exists():
            source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
            except OSError:
                return
