"""Feature-level augmentation: masks stay inside the clip, mixup stays inside a class, validation untouched."""

import torch

from mmser.training.frame_augment import FrameAugment, mask_channels, mask_time, mix_within_class


def batch(lengths=(20, 12, 7), layers=2, dim=16):
    torch.manual_seed(0)
    t = max(lengths)
    audio = torch.randn(len(lengths), layers, t, dim) + 5.0  # no exact zeros before masking
    mask = torch.zeros(len(lengths), t, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, :n] = True
        audio[b, :, n:] = 0
    return audio, mask


def test_time_mask_zeroes_about_the_fraction_of_valid_frames():
    audio, mask = batch()
    out = mask_time(audio, mask, 0.3)
    zeroed = (out == 0).all(dim=-1).all(dim=1) & mask  # (B, T) valid frames zeroed in every layer
    for b, n in enumerate(mask.sum(1).tolist()):
        assert 0 < zeroed[b].sum() <= int(0.3 * n)
    unchanged = (out != 0).all(-1).all(1)
    assert torch.equal(out[unchanged.unsqueeze(1).expand(-1, 2, -1)], audio[unchanged.unsqueeze(1).expand(-1, 2, -1)])


def test_channel_mask_zeroes_the_same_channels_everywhere():
    audio, mask = batch()
    out = mask_channels(audio, 0.25)
    for b, n in enumerate(mask.sum(1).tolist()):
        dead = (out[b, :, :n] == 0).all(dim=0).all(dim=0)  # (D,)
        assert dead.sum() == 4


def test_mixup_mixes_only_clips_of_the_same_class():
    audio, mask = batch(lengths=(20, 12, 7, 9))
    target = torch.tensor([3, 5, 3, 4])
    torch.manual_seed(1)
    out, union = mix_within_class(audio, mask, target, alpha=0.4)
    assert torch.equal(out[1], audio[1]) and torch.equal(out[3], audio[3])  # alone in their class
    for row, other in ((0, 2), (2, 0)):  # a convex mix of the two class-3 clips
        lam = (out[row, 0, 0, 0] - audio[other, 0, 0, 0]) / (audio[row, 0, 0, 0] - audio[other, 0, 0, 0])
        torch.testing.assert_close(out[row], lam * audio[row] + (1 - lam) * audio[other])
    assert torch.equal(union[0], mask[0] | mask[2])


def test_only_training_steps_are_augmented():
    from mmser.models.builders import ModelDims, build_model
    from mmser.training.lit_module import EmotionLitModule

    calls = []

    class Spy(FrameAugment):
        def __call__(self, b):
            calls.append(len(b["target"]))
            return super().__call__(b)

    model = build_model(ModelDims("audio_only", audio_dim=16, num_audio_layers=2, hidden_dim=8))
    module = EmotionLitModule(model, torch.ones(8), frame_augment=Spy(time_mask=0.2))
    audio, mask = batch()
    b = {"audio": audio, "audio_mask": mask, "target": torch.tensor([0, 1, 2]), "index": torch.arange(3)}
    module.model_step(b)
    module._val_preds, module._val_targets = [], []
    module.log = lambda *a, **k: None
    module.validation_step(b, 0)
    assert calls == []
    module.training_step(b, 0)
    assert calls == [3]
