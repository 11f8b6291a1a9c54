"""Training learns a separable problem; class weights; metrics (WA, UA) on known cases."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmser.features.batching import FeatureDataset
from mmser.models.builders import ModelDims, build_model
from mmser.training.fit import class_weights, fit, predict_proba
from mmser.training.metrics import bootstrap_ci, classification_metrics, paired_bootstrap_p

TRAIN = SimpleNamespace(max_epochs=15, batch_size=16, lr=3e-3, weight_decay=0.0, warmup_ratio=0.1, patience=15,
                        accumulate_grad_batches=1, class_weighted=True, label_smoothing=0.0, num_workers=0,
                        length_buckets=0)
TRAINER = SimpleNamespace(accelerator="cpu", devices=1, strategy="auto", precision="auto", enable_progress_bar=False)


def separable(n, seed):
    rng = np.random.default_rng(seed)
    labels = ["angry", "sad"] * (n // 2)
    audio = []
    for label in labels:
        x = rng.standard_normal((1, int(rng.integers(8, 20)), 6)).astype(np.float16)
        x[..., 0] += 2.0 if label == "angry" else -2.0
        audio.append(x)
    return FeatureDataset([f"u{i}" for i in range(n)], labels, audio)


def test_training_learns_and_keeps_best_validation_weights():
    mask = tuple(c in ("angry", "sad") for c in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"))
    model = build_model(ModelDims(kind="audio_only", audio_dim=6, num_audio_layers=1, hidden_dim=16, dropout=0.0, class_mask=mask))
    model, summary = fit(model, separable(64, 0), separable(32, 1), TRAIN, TRAINER, seed=0)
    test = separable(40, 2)
    probs = predict_proba(model, test)
    pred = np.array(["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"])[probs.argmax(1)]
    assert (pred == np.array(["angry", "sad"] * 20)).mean() > 0.9
    assert summary["best_val_ua"] is not None and summary["best_val_ua"] >= max(h["val_ua"] for h in summary["history"]) - 1e-9


def test_each_epochs_history_holds_that_epochs_mean_training_loss(monkeypatch):
    """Validation runs before a training epoch's end: the loss recorded beside an epoch's validation UA is the
    mean over that epoch's training clips (not the previous epoch's)."""
    from mmser.training import fit as fit_module
    from mmser.training.lit_module import EmotionLitModule

    losses: dict[int, list[tuple[float, int]]] = {}

    class Recording(EmotionLitModule):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            losses.setdefault(int(self.current_epoch), []).append((float(loss.detach()), len(batch["target"])))
            return loss

    monkeypatch.setattr(fit_module, "EmotionLitModule", Recording)
    mask = tuple(c in ("angry", "sad") for c in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"))
    model = build_model(ModelDims(kind="audio_only", audio_dim=6, num_audio_layers=1, hidden_dim=16, dropout=0.0, class_mask=mask))
    _, summary = fit(model, separable(40, 0), separable(16, 1), SimpleNamespace(**{**vars(TRAIN), "max_epochs": 4}),
                     TRAINER, seed=0)
    assert [h["epoch"] for h in summary["history"]] == [0, 1, 2, 3]
    for h in summary["history"]:
        steps = losses[h["epoch"]]
        assert h["train_loss"] == pytest.approx(sum(x * n for x, n in steps) / sum(n for _, n in steps), rel=1e-5)


def test_a_trained_starting_model_is_kept_unless_training_beats_it_on_validation():
    mask = tuple(c in ("angry", "sad") for c in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"))
    torch.manual_seed(0)
    model = build_model(ModelDims(kind="audio_only", audio_dim=6, num_audio_layers=1, hidden_dim=16, dropout=0.0, class_mask=mask))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    frozen_lr = SimpleNamespace(**{**vars(TRAIN), "lr": 0.0, "max_epochs": 3})  # no epoch can beat the start
    model, summary = fit(model, separable(32, 0), separable(16, 1), frozen_lr, TRAINER, seed=0, start_is_candidate=True)
    assert summary["best_epoch"] == -1
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, start[k])


def test_a_start_is_replaced_only_by_a_significant_validation_gain():
    mask = tuple(c in ("angry", "sad") for c in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"))
    dims = ModelDims(kind="audio_only", audio_dim=6, num_audio_layers=1, hidden_dim=16, dropout=0.0, class_mask=mask)
    torch.manual_seed(0)
    untrained = build_model(dims).state_dict()
    runs = {}
    for alpha in (None, 0.05, 0.0):  # 0.0: no p-value is below it, so no gain is ever significant enough
        model = build_model(dims)
        model.load_state_dict(untrained)
        cfg = SimpleNamespace(**{**vars(TRAIN), "replace_start_p": alpha})
        runs[alpha] = fit(model, separable(64, 0), separable(32, 1), cfg, TRAINER, seed=0, start_is_candidate=True)
    assert runs[None][1]["best_epoch"] >= 0 and "replace_start_p" not in runs[None][1]
    gated = runs[0.05][1]
    assert gated["best_epoch"] == runs[None][1]["best_epoch"]
    assert gated["replace_start_alpha"] == pytest.approx(0.05 / len(gated["history"]))  # best of that many epochs
    assert gated["replace_start_p"] < gated["replace_start_alpha"]
    kept, summary = runs[0.0]
    assert summary["best_epoch"] == -1 and summary["trained_best_epoch"] == runs[None][1]["best_epoch"]
    for k, v in kept.state_dict().items():
        torch.testing.assert_close(v, untrained[k])


def test_paired_bootstrap_p_value():
    y = np.array([0, 1] * 30)
    chance = np.zeros_like(y)
    assert paired_bootstrap_p(y, chance, y) == 0.0  # perfect vs one class: always better
    assert paired_bootstrap_p(y, y, chance) == 1.0 and paired_bootstrap_p(y, y, y) == 1.0  # worse / equal: never
    one_more = chance.copy()
    one_more[1] = 1  # one utterance better out of 60: not significant
    assert 0.2 < paired_bootstrap_p(y, chance, one_more) < 1.0


def test_class_weights_inverse_frequency():
    w = class_weights([4, 4, 4, 3], tuple([True] * 8))
    assert w[3] == pytest.approx(3 * w[4]) and w[0] == 1.0


def test_metrics_known_case():
    y_true = np.array(["angry"] * 8 + ["sad"] * 2)
    y_pred = np.array(["angry"] * 8 + ["angry"] * 2)
    m = classification_metrics(y_true, y_pred, ["angry", "sad"])
    assert m["WA"] == pytest.approx(0.8) and m["UA"] == pytest.approx(0.5)
    assert m["confusion"]["matrix"] == [[8, 0], [2, 0]]
    lo, hi = bootstrap_ci(y_true, y_pred, n_boot=200)
    assert lo <= 0.5 <= hi


def test_bootstrap_in_passes_draws_what_one_pass_draws(monkeypatch):
    """A large manifest's resamples are drawn a few at a time (bounded memory), the same draws in the same order."""
    import mmser.training.metrics as metrics

    rng = np.random.default_rng(3)
    y_true = rng.choice(["angry", "sad", "happy"], 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, "sad")
    whole = bootstrap_ci(y_true, y_pred, n_boot=50, seed=1)
    monkeypatch.setattr(metrics, "BOOTSTRAP_INDICES", 7 * 60)  # 7 resamples a pass: 8 passes, the last of 1
    assert bootstrap_ci(y_true, y_pred, n_boot=50, seed=1) == whole
    assert bootstrap_ci(y_true, y_pred, n_boot=50, seed=2) != whole


def test_member_summary_reads_as_a_percentage_and_an_epoch_from_one():
    from mmser.recipes.train import validation_text

    assert validation_text({"best_val_ua": 0.8203125, "best_epoch": 12, "epochs_run": 30}) == \
        "best validation UA 82.0 % at epoch 13 of 30"
    assert "starting model" in validation_text({"best_val_ua": 0.5, "best_epoch": -1, "epochs_run": 4})
    assert "no validation speakers" in validation_text({"best_val_ua": None, "best_epoch": -1, "epochs_run": 4})


def test_unweighted_accuracy_is_balanced_accuracy_without_its_warning():
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    from mmser.training.metrics import unweighted_accuracy

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 40))
        y_true, y_pred = rng.choice(list("abcd"), n), rng.choice(list("abcdef"), n)  # predictions beyond the truth
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = balanced_accuracy_score(y_true, y_pred)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # one speaker's predictions often name a class its labels lack
            assert unweighted_accuracy(y_true, y_pred) == pytest.approx(want, abs=1e-12)


def test_training_without_validation_records_each_epochs_loss_and_says_nothing_of_it(recwarn):
    """No validation speakers (split.val_speakers: 0): max_epochs are run, each epoch's training loss is kept in
    the history (val_ua None) and Lightning's warning about the missing validation loader is not shown."""
    mask = tuple(c in ("angry", "sad") for c in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"))
    model = build_model(ModelDims(kind="audio_only", audio_dim=6, num_audio_layers=1, hidden_dim=16, dropout=0.0, class_mask=mask))
    _, summary = fit(model, separable(40, 0), None, SimpleNamespace(**{**vars(TRAIN), "max_epochs": 3}), TRAINER, seed=0)
    assert summary["best_val_ua"] is None and summary["epochs_run"] == 3
    assert [h["epoch"] for h in summary["history"]] == [0, 1, 2]
    assert all(h["val_ua"] is None and h["train_loss"] > 0 for h in summary["history"])
    assert not [w for w in recwarn if "val_dataloader" in str(w.message)]
