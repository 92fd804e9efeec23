"""Keras callbacks for MaskRCNN.train: a time budget, and a progress bar with an ETA.

How Keras ends a training early (keras/src/backend/tensorflow/trainer.py, `fit`, the same in
Keras 3.13 and 3.15): after each step's `on_train_batch_end` it reads `model.stop_training` and,
when set, leaves the step loop at once; the epoch then ends as usual (validation, then
`on_epoch_end`, where our checkpoint is written), and after `on_epoch_end` it reads the flag
again and starts no further epoch. So a budget checked at every step's end stops at a step
boundary and loses nothing: the partial epoch is validated and saved like a full one.

A callback that overrides `on_train_batch_end` is called in step order on the training thread
(Keras dispatches batch ends to a thread pool only when no callback overrides them), so the flag
is set before Keras reads it.
"""
import time

import keras


def format_seconds(seconds):
    """h:mm:ss or m:ss, for progress lines ("?" when unknown)."""
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the first step boundary after `seconds` have passed since it began.

    Why at a step boundary: a step is the smallest unit Keras can stop at without losing work;
    the epoch then ends normally (validation, checkpoint), so the time paid for is saved. The
    budget is also checked at each epoch's end, so that a validation that spends the rest of
    it does not start another epoch. seconds None: never stops, only measures.

    clock: a function giving seconds (time.monotonic); tests pass a fake one.
    Afterwards: `stopped` (the budget stopped it), `epochs_ended` (the last epoch whose
    on_epoch_end ran, 0-based, or None), `step` (steps done in the last epoch begun), `steps`
    (steps done in all), `elapsed_at_stop` and `seconds_trained` (on_train_begin to on_train_end).
    Put it first in the callback list: callbacks after it see the flag at the same step.
    """

    def __init__(self, seconds, clock=time.monotonic):
        super().__init__()
        if seconds is not None and not float(seconds) >= 0:
            raise ValueError(f"a time budget is a number of seconds >= 0 or None, not {seconds!r}")
        self.seconds = None if seconds is None else float(seconds)
        self.clock = clock
        self.start = None
        self._reset()

    def _reset(self):
        self.stopped = False
        self.epoch = None
        self.last_epoch_ended = None
        self.step = 0
        self.steps = 0
        self.elapsed_at_stop = None
        self.seconds_trained = 0.0

    def elapsed(self):
        """Seconds since training began (0 before it)."""
        return 0.0 if self.start is None else float(self.clock() - self.start)

    def remaining(self):
        """Seconds of budget left (None without a budget, never below 0)."""
        return None if self.seconds is None else max(0.0, self.seconds - self.elapsed())

    def spent(self):
        return self.seconds is not None and self.elapsed() >= self.seconds

    def on_train_begin(self, logs=None):
        self._reset()
        self.start = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch, 0

    def on_train_batch_end(self, batch, logs=None):
        self.step = batch + 1
        self.steps += 1
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch_ended = epoch
        self._check()

    def on_train_end(self, logs=None):
        self.seconds_trained = self.elapsed()

    def _check(self):
        if not self.stopped and self.spent():
            self.stopped = True
            self.elapsed_at_stop = self.elapsed()
            self.model.stop_training = True


def _bar_class():
    """tqdm.auto's class (a widget in Jupyter, text elsewhere) with our own ETA and elapsed fields
    (read from the training's clock, as the budget is)."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        eta_text, elapsed_text = "?", "0:00"

        @property
        def format_dict(self):
            values = super().format_dict
            values.update(eta_text=self.eta_text, elapsed_text=self.elapsed_text)
            return values

    return Bar


LOSS_LABELS = {"loss": "loss", "rpn_class_loss": "rpn_class", "rpn_bbox_loss": "rpn_bbox",
               "mrcnn_class_loss": "class", "mrcnn_bbox_loss": "bbox", "mrcnn_mask_loss": "mask"}


def eta_seconds(steps_left, seconds_per_step, budget_left=None):
    """Seconds until training ends: the steps left at the measured pace, or the budget left if sooner."""
    by_steps = None if seconds_per_step is None else steps_left * seconds_per_step
    candidates = [s for s in (by_steps, budget_left) if s is not None]
    return min(candidates) if candidates else None


class TrainingProgress(keras.callbacks.Callback):
    """One progress bar over all the steps of a train() call (tqdm.auto: Jupyter or plain text).

    Shows the epoch and step (Matterport's counting, epochs `initial_epoch + 1 .. epochs`), the
    five losses and their total (the epoch's running means, as Keras reports them), the budget
    left when there is one, and an ETA: the steps left at the pace measured so far (the first
    step, which builds the graph, is left out once there are others), or the budget left when
    that is sooner. A line per epoch keeps the epoch's losses and validation losses on record.
    """

    def __init__(self, steps_per_epoch, initial_epoch, epochs, budget=None, clock=time.monotonic, desc="training",
                 file=None, mininterval=1.0):
        super().__init__()
        self.steps_per_epoch = int(steps_per_epoch)
        self.initial_epoch, self.epochs = int(initial_epoch), int(epochs)
        self.total = max(0, self.epochs - self.initial_epoch) * self.steps_per_epoch
        self.budget, self.clock, self.desc = budget, clock, desc
        self.file, self.mininterval = file, mininterval
        self.bar = None
        self.epoch = self.initial_epoch
        self.done = 0
        self.start = self.first_step_end = None

    def on_train_begin(self, logs=None):
        self.start = self.clock()
        self.done, self.first_step_end = 0, None
        self.bar = _bar_class()(total=self.total, desc=self.desc, unit="step", file=self.file,
                                mininterval=self.mininterval, dynamic_ncols=True,
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                           "[{elapsed_text} elapsed, ETA {eta_text}{postfix}]")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def seconds_per_step(self):
        """The pace so far; the first step (graph building) counts only while it is the only one."""
        if self.done == 0:
            return None
        now = self.clock()
        if self.done == 1 or self.first_step_end is None:
            return (now - self.start) / self.done
        return (now - self.first_step_end) / (self.done - 1)

    def eta(self):
        budget_left = self.budget.remaining() if self.budget is not None else None
        return eta_seconds(self.total - self.done, self.seconds_per_step(), budget_left)

    def postfix(self, step, logs):
        parts = [f"epoch {self.epoch + 1}/{self.epochs}", f"step {step}/{self.steps_per_epoch}"]
        parts += [f"{label} {logs[name]:.3f}" for name, label in LOSS_LABELS.items()
                  if isinstance(logs.get(name), (int, float))]
        if self.budget is not None and self.budget.seconds is not None:
            parts.append(f"budget left {format_seconds(self.budget.remaining())}")
        return ", ".join(parts)

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done == 1:
            self.first_step_end = self.clock()
        if self.bar is None:
            return
        self.bar.eta_text = format_seconds(self.eta())
        self.bar.elapsed_text = format_seconds(self.clock() - self.start)
        self.bar.set_postfix_str(self.postfix(batch + 1, logs or {}), refresh=False)
        self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is None:
            return
        logs = logs or {}
        step = self.budget.step if self.budget is not None else self.steps_per_epoch
        line = f"epoch {epoch + 1}/{self.epochs} ({step}/{self.steps_per_epoch} steps)"
        for name, label in LOSS_LABELS.items():
            if isinstance(logs.get(name), (int, float)):
                value = f"{label} {logs[name]:.3f}"
                if isinstance(logs.get("val_" + name), (int, float)):
                    value += f" (val {logs['val_' + name]:.3f})"
                line += ", " + value
        self.bar.write(line + f"; {format_seconds(self.clock() - self.start)} elapsed", file=self.file)

    def on_train_end(self, logs=None):
        if self.bar is not None and self.budget is not None and self.budget.stopped:
            self.bar.write(f"time budget of {format_seconds(self.budget.seconds)} reached: stopped after step "
                           f"{self.budget.step} of epoch {self.budget.epoch + 1}, which was validated and saved",
                           file=self.file)
        self.close()

    def close(self):
        """Close the bar (also when training ends with an exception); safe to call twice."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
