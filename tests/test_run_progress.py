"""CV progress: the time left is the mean finished epoch times the epochs still to train."""

from __future__ import annotations

from emofuse.training.callbacks import CVClock, _duration


def test_time_left_counts_this_fold_and_the_folds_after_it():
    clock = CVClock([3, 5, 7], max_epochs=4)
    assert "left" not in clock.eta(3, 0)  # nothing measured yet: no guess
    clock.epoch_seconds += [10.0, 30.0]  # mean 20 s
    # after epoch index 1 of fold 3: 2 epochs left here + 2 folds x 4 epochs = 10 epochs
    assert clock.eta(3, 1).endswith("~3m20s left")
    assert clock.eta(7, 3).endswith("~0s left")  # the last epoch of the last fold
    assert clock.fold_log(5).prefix == "fold 5 (2/3) "


def test_durations_read_as_time():
    assert [_duration(s) for s in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]
