"""Tests for the loss registry (boxloss.registry) and for the maths package staying free of ultralytics."""

from __future__ import annotations

import pytest
from helpers import fresh_interpreter_imports

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


def _counting_state(name: str = "seen"):
    """A state that counts the boxes seen: initial 0, value + batch_mean · scale, the statistic 1 per box."""
    from boxloss.registry import LossState

    return LossState(name, 0.0, statistic=lambda pred, target: [1.0] * len(pred),
                     update=lambda value, batch_mean, scale=1.0, **other: value + batch_mean * scale)


def test_a_loss_declares_its_state_and_the_caller_gathers_its_context():
    """A declared state joins the loss's context; call_context gives the kept value (the initial one before any
    update) and computes only the inputs the loss declares; updated_state applies the rule with the loss's
    hyper-parameters; a wrapped loss keeps its base's state."""
    from boxloss.param import Param

    registry = Registry("test")
    state = _counting_state()

    @registry.register("a", context=("stride",), state=(state,), iou_based=True,
                       params={"scale": Param(2.0, "scale", lambda s: s > 0, "> 0")})
    def loss_a(pred, target, scale=2.0, *, stride, seen):
        return pred

    @registry.register_wrapper("w", params={"ratio": Param(0.5, "ratio")})
    def wrap(base_terms, pred, target, ratio=0.5):
        return base_terms(pred, target)

    spec = registry.spec("a")
    assert spec.context == ("stride", "seen") and spec.state == (state,)
    assert registry.spec("w_a").state == (state,) and registry.spec("w_a").context == ("stride", "seen")
    asked = []
    available = {"stride": lambda: asked.append("stride") or 8.0, "image_size": lambda: asked.append("image_size")}
    assert spec.call_context(available) == {"seen": 0.0, "stride": 8.0} and asked == ["stride"]
    assert spec.call_context({"stride": 1.0}, {"seen": 3.0, "other": 1}) == {"seen": 3.0, "stride": 1.0}
    with pytest.raises(ValueError, match="loss 'a' takes 'stride', which this caller does not provide"):
        spec.call_context({"image_size": (1, 1)})
    assert spec.bind().updated_state(state, 3.0, 0.5) == 4.0  # 3 + 0.5 · scale 2
    assert registry.spec("w_a").bind(scale=4.0, ratio=0.9).updated_state(state, 3.0, 0.5) == 5.0


def test_a_context_input_no_caller_provides_is_refused_at_registration():
    registry = Registry("test")
    with pytest.raises(ValueError, match="context input 'iou_mean' is not one of image_size, stride, class_counts"):
        registry.register("b", context=("iou_mean",))(lambda pred, target, *, iou_mean: pred)
    assert registry.names() == []


def test_wiou_v3_declares_its_running_mean():
    """WIoU v3's state (arXiv 2301.10051, the authors' IoU_Cal): from 1, mean ← (1 − m) mean + m · mean(1 − IoU)."""
    import torch

    spec = get_spec("wiou_v3")
    (state,) = spec.state
    assert (state.name, state.initial) == ("iou_mean", 1.0) and spec.context == ("iou_mean",)
    pred, target = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0]] * 2)
    torch.testing.assert_close(state.statistic(pred, target), torch.tensor([1 - 2 / 6, 1.0]), rtol=0, atol=1e-6)
    assert spec.bind(momentum=0.25).updated_state(state, 1.0, 0.5) == pytest.approx(0.875, abs=1e-15)
    assert all(not get_spec(name).state for name in list_losses() if name != "wiou_v3")
