"""mrcnn.callbacks: the time budget (fake clock: no timed test) and the progress bar; train()'s wiring."""
import io
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from mrcnn.callbacks import TimeBudget, TrainingProgress, eta_seconds, format_seconds
from mrcnn.model import MaskRCNN
from mrcnn.samples.shapes import ShapesDataset
from tests.test_mrcnn_model import TinyConfig
from tests.test_mrcnn_training import record_events


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Tick(keras.callbacks.Callback):
    """Lets `seconds` pass on the fake clock during every training step."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.now += self.seconds


def run_steps(budget, clock, durations, steps_per_epoch=100):
    """Drive a TimeBudget by hand like fit() does; returns the steps done when it stopped (or all)."""
    budget.set_model(SimpleNamespace(stop_training=False))
    budget.on_train_begin()
    budget.on_epoch_begin(0)
    for done, seconds in enumerate(durations, 1):
        clock.now += seconds
        budget.on_train_batch_end((done - 1) % steps_per_epoch)
        if budget.model.stop_training:
            return done
    return len(durations)


@pytest.mark.parametrize("seed", range(5))
def test_budget_stops_at_the_first_step_that_ends_past_it(seed):
    rng = np.random.default_rng(seed)
    durations = rng.uniform(0.5, 3.0, 200)
    seconds = float(rng.uniform(20, 100))
    clock = FakeClock()
    budget = TimeBudget(seconds, clock=clock)
    stopped_after = run_steps(budget, clock, durations)
    # oracle: the first k whose steps together reach the budget, found by summing in order
    expected = next(k for k in range(1, len(durations) + 1) if sum(durations[:k]) >= seconds)
    assert stopped_after == expected and budget.stopped and budget.steps == expected
    assert budget.elapsed_at_stop == pytest.approx(sum(durations[:expected]))
    assert budget.elapsed_at_stop - seconds < durations[expected - 1]       # within one step of it


def test_no_budget_only_measures_and_a_zero_budget_stops_after_one_step():
    clock = FakeClock()
    watch = TimeBudget(None, clock=clock)
    assert run_steps(watch, clock, [5.0] * 30) == 30 and not watch.stopped and watch.remaining() is None
    watch.on_train_end()
    assert watch.seconds_trained == 150.0
    assert run_steps(TimeBudget(0, clock=clock), clock, [5.0] * 30) == 1
    with pytest.raises(ValueError, match="seconds"):
        TimeBudget(-1)


def test_budget_spent_during_validation_starts_no_further_epoch():
    clock = FakeClock()
    budget = TimeBudget(10, clock=clock)
    assert run_steps(budget, clock, [2.0] * 4, steps_per_epoch=4) == 4 and not budget.stopped
    clock.now += 5.0                           # validation, after the epoch's last step
    budget.on_epoch_end(0)
    assert budget.stopped and budget.model.stop_training and budget.last_epoch_ended == 0


def tiny_keras_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_keras_fit_leaves_the_step_loop_at_once_and_still_ends_the_epoch():
    """What TimeBudget relies on in keras' fit(): no step after the stop, validation and
    on_epoch_end of the partial epoch still run, and no later epoch begins."""
    clock, events = FakeClock(), []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            events.append(("epoch", epoch))

        def on_train_batch_end(self, batch, logs=None):
            events.append(("step", batch))

        def on_test_begin(self, logs=None):
            events.append(("validate",))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch_end", epoch))

    x, y = np.ones((40, 3), np.float32), np.ones((40, 1), np.float32)
    budget = TimeBudget(25, clock=clock)
    tiny_keras_model().fit(x, y, batch_size=2, epochs=3, steps_per_epoch=5, validation_data=(x, y),
                           validation_steps=1, verbose=0, callbacks=[budget, Tick(clock, 10), Record()])
    assert events == [("epoch", 0), ("step", 0), ("step", 1), ("step", 2), ("validate",), ("epoch_end", 0)]
    assert budget.stopped and budget.step == 3 and budget.seconds_trained == 30


def test_eta_is_the_sooner_of_the_steps_left_and_the_budget():
    assert eta_seconds(10, 2.0) == 20.0
    assert eta_seconds(10, 2.0, budget_left=5.0) == 5.0
    assert eta_seconds(10, 2.0, budget_left=50.0) == 20.0
    assert eta_seconds(10, None, budget_left=7.0) == 7.0 and eta_seconds(10, None) is None
    assert [format_seconds(s) for s in (None, 0, 59.6, 61, 3725)] == ["?", "0:00", "1:00", "1:01", "1:02:05"]


def test_progress_bar_shows_epoch_step_losses_budget_and_eta():
    clock, out = FakeClock(), io.StringIO()
    budget = TimeBudget(100, clock=clock)
    bar = TrainingProgress(steps_per_epoch=4, initial_epoch=2, epochs=4, budget=budget, clock=clock, desc="heads",
                           file=out, mininterval=0)
    budget.set_model(SimpleNamespace(stop_training=False))
    logs = {"loss": 2.5, "rpn_class_loss": 0.1, "rpn_bbox_loss": 0.2, "mrcnn_class_loss": 0.3,
            "mrcnn_bbox_loss": 0.4, "mrcnn_mask_loss": 0.5}
    for callback in (budget, bar):
        callback.on_train_begin()
        callback.on_epoch_begin(2)
    for step, seconds in enumerate([30.0, 5.0, 5.0]):    # the first step builds the graph
        clock.now += seconds
        for callback in (budget, bar):
            callback.on_train_batch_end(step, logs)
    text = out.getvalue().split("\r")[-1]
    assert bar.total == 8 and bar.done == 3
    assert "epoch 3/4" in text and "step 3/4" in text
    for label in ("loss 2.500", "rpn_class 0.100", "rpn_bbox 0.200", "class 0.300", "bbox 0.400", "mask 0.500"):
        assert label in text
    assert "budget left 1:00" in text
    # 5 steps left at 5 s (the first step left out) = 25 s, sooner than the 60 s of budget left
    assert "ETA 0:25" in text
    clock.now += 5.0
    bar.on_train_batch_end(3, logs)
    budget.remaining = lambda: 8.0
    bar.on_train_batch_end(0, logs)
    assert "ETA 0:08" in out.getvalue().split("\r")[-1]
    bar.on_train_end()
    assert bar.bar is None


@pytest.fixture(scope="module")
def shapes():
    dataset = ShapesDataset()
    dataset.load_shapes(4, size=64, seed=1)
    dataset.prepare()
    return dataset


def test_train_with_a_budget_stops_saves_measures_and_reports(tmp_path, shapes, monkeypatch, capsys):
    config = TinyConfig(STEPS_PER_EPOCH=4, PRECISE_BN_BATCHES=1, KEEP_CHECKPOINTS=None)
    model = MaskRCNN("training", config, tmp_path)
    clock, events = FakeClock(), []
    record = record_events(model, monkeypatch, events, measured=lambda *_: ("measure",), checkpoint=lambda epoch: (
        "checkpoint", epoch, Path(model.checkpoint_path.format(epoch=epoch + 1)).is_file()))
    model.train(shapes, shapes, learning_rate=0.001, epochs=3, layers="all", verbose=0, seed=0,
                custom_callbacks=[Tick(clock, 10.0), record], time_budget=15, clock=clock, progress=True)
    # stopped after the 2nd step (20 s >= 15 s); precise BN measures at that step (train()'s
    # callbacks come before the user's, so before Record hears of it), then validation and the
    # checkpoint of that partial epoch, and nothing more
    assert events == [("step", 0), ("measure",), ("step", 1), ("validate",), ("checkpoint", 0, True)]
    assert model.epoch == 1 and Path(model.find_last()).name == "mask_rcnn_tiny_0001.h5"
    assert model.last_train_stop == {"reason": "time budget", "epoch": 1, "step": 2, "steps": 2, "seconds": 20.0,
                                     "budget": 15.0}
    out = capsys.readouterr()
    assert "training all" in out.err and "0:20 elapsed" in out.err
    assert "epoch 1/3 (2/4 steps)" in out.out and "time budget of 0:15 reached" in out.out

    # no budget: the epochs are done, and the epoch reached is the one asked for
    events.clear()
    model.train(shapes, shapes, learning_rate=0.001, epochs=2, layers="all", verbose=0, seed=0,
                custom_callbacks=[Tick(clock, 10.0), record], clock=clock)
    assert [e for e in events if e[0] == "step"] == [("step", k) for k in range(4)]
    assert model.epoch == 2 and model.last_train_stop["reason"] == "epochs done"
    assert model.last_train_stop["seconds"] == 40.0 and model.last_train_stop["budget"] is None
