import click
import pytest

from pioneer.validate import MAX_STRIP, Number, check_batch_split, check_device, check_strengths, finite


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "NaN"])
def test_number_refuses_non_finite(text):
    with pytest.raises(click.BadParameter, match="not a finite number"):
        Number(0, open_low=True).convert(text, None, None)


def test_number_ranges_and_integers():
    t = Number(0, 2, open_high=True)
    assert t.convert("0", None, None) == 0 and t.convert("1.5", None, None) == 1.5
    with pytest.raises(click.BadParameter, match="below 2"):
        t.convert("2", None, None)
    with pytest.raises(click.BadParameter, match="at least 0"):
        t.convert("-1", None, None)
    i = Number(1, 8, integer=True)
    assert i.convert("8", None, None) == 8
    with pytest.raises(click.BadParameter, match="not an integer"):
        i.convert("2.5", None, None)


def test_finite_and_strengths():
    assert finite(1.0, "x", 0, 2) == 1.0
    with pytest.raises(ValueError, match="not a finite"):
        finite(float("nan"), "x")
    check_strengths([-2.0, 2.0], 5)
    for values, count in (([float("inf"), 0.0], 3), ([1e308], 1), ([0.0, 1.0], MAX_STRIP + 1), ([0.0, 1.0], 0)):
        with pytest.raises(ValueError):
            check_strengths(values, count)


def test_devices_and_batches():
    check_device("auto"), check_device("cpu")
    with pytest.raises(click.BadParameter, match="not a device"):
        check_device("bogus")
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(click.BadParameter, match="no CUDA GPU"):
            check_device("cuda")
    check_batch_split({4: 8, 8: 8}, 8, 2)
    with pytest.raises(click.UsageError, match="does not split over --gpus 3"):
        check_batch_split({4: 8, 8: 8}, 8, 3)
