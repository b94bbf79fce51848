"""Tests for the loss registry (boxloss.registry) and for the maths package staying free of ultralytics."""

from __future__ import annotations

import pytest
from conftest import fresh_interpreter_imports

from boxloss import get_loss, get_spec, list_losses
from boxloss.registry import BOX_LOSSES, Registry

CURRENT_BOX_LOSSES = {"ciou", "diou", "eiou", "focal_eiou", "focal_l1", "giou", "iou", "smooth_l1"}


def test_list_losses_sorted_and_complete():
    names = list_losses()
    assert names == sorted(names) and len(names) == len(set(names))
    assert CURRENT_BOX_LOSSES <= set(names)
    assert {"bce", "focal"} <= set(list_losses("cls"))
    assert list_losses() == list_losses("box")


@pytest.mark.parametrize("kind", ["box", "cls"])
def test_unknown_name_raises_key_error_listing_valid_names(kind):
    with pytest.raises(KeyError) as info:
        get_loss("no_such_loss", kind)
    message = str(info.value)
    assert "no_such_loss" in message
    for name in list_losses(kind):
        assert name in message
    with pytest.raises(KeyError, match="no_such_loss"):
        get_spec("no_such_loss", kind)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="box"):
        list_losses("segmentation")


def test_duplicate_registration_raises_and_keeps_the_first():
    registry = Registry("test")

    @registry.register("a")
    def first(pred, target):
        return pred

    with pytest.raises(ValueError, match="'a' is already registered"):
        registry.register("a")(lambda pred, target: target)
    assert registry.get("a") is first and registry.names() == ["a"]


def test_registering_an_existing_box_loss_name_raises_and_changes_nothing():
    before = get_loss("ciou")
    with pytest.raises(ValueError, match="already registered"):
        BOX_LOSSES.register("ciou")(lambda pred, target: pred)
    assert get_loss("ciou") is before


def test_get_spec_describes_the_loss():
    spec = get_spec("focal_eiou")
    assert spec.fn is get_loss("focal_eiou") and spec.terms is not None
    assert spec.params["gamma"].default == 0.5 and spec.params["norm"].choices == ("batch", "none")
    assert not spec.params["gamma"].check(-1) and not spec.params["norm"].check("mean")
    assert "2101.08158" in spec.paper


def test_importing_boxloss_does_not_import_ultralytics():
    """Fresh interpreter: the maths (boxloss and boxloss.losses) must not pull in ultralytics."""
    assert fresh_interpreter_imports("import boxloss, boxloss.losses, boxloss.registry", ("ultralytics",)) == []


def test_the_package_docstring_shows_what_is_registered():
    """boxloss/__init__.py's example lists the classification losses as the registry has them (it once listed eight
    box losses for YOLOv8 long after there were more)."""
    import boxloss

    assert repr(boxloss.list_losses("cls")) in boxloss.__doc__ and "eiou" in boxloss.list_losses()
