"""Errors before work: a wrong value or file given to cv / train / ablate / predict ends in seconds with exit
code 2 and one line naming the key or file — no traceback, nothing read from the cache, nothing encoded."""

import time

import pytest

from mmser.cli import main
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv

LIMIT_S = 5.0  # seconds a refused command may take


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    _prepared_csv(root, "a", ["angry", "sad"])
    _csv_experiment(root / "exp.yaml", "model.kind=cross_attn", "model.hidden_dim=16", "model.fusion.num_heads=2")
    return root


CASES = [  # (command, extra arguments, what the message must name)
    ("cv", ["model.kind=crossattn"], "model.kind"),
    ("cv", ["model.fusion.num_heads=7"], "model.fusion.num_heads"),
    ("cv", ["features.whisper_window=20s"], "features.whisper_window"),
    ("cv", ["split.protocol=random"], "split.protocol"),
    ("cv", ["data.classes=[happy,joyful]"], "data.classes"),
    ("cv", ["features.audio_encoders=[wav2vec:base]"], "features.audio_encoders"),
    ("cv", ["train.lr=-1"], "train.lr"),
    ("cv", ["features.frame_stride=0"], "features.frame_stride"),
    ("cv", ["features.speaker_norm.mode=enrol"], "features.speaker_norm.clips"),
    ("cv", ["features.speaker_norm.mode=running", "features.speaker_norm.clips=3"], "features.speaker_norm.clips"),
    ("cv", ["features.speaker_norm.mode=sometimes"], "features.speaker_norm.mode"),
    ("cv", ["features.speaker_norm.mode=running", "features.speaker_norm.test_clips=3"],
     "features.speaker_norm.test_clips: only for mode=enrol"),
    ("cv", ["features.speaker_norm.mode=enrol", "features.speaker_norm.clips=3", "features.speaker_norm.test_clips=0"],
     "features.speaker_norm.test_clips: 0 must be >= 1"),
    ("cv", ["features.speaker_norm.mode=enrol", "features.speaker_norm.clips=3", "features.speaker_norm.test_clips=2",
            "features.test_time_speeds=[0.9]"], "features.test_time_speeds: not with features.speaker_norm.test_clips"),
    ("cv", ["features.speaker_norm.mode=instance", "features.speaker_norm.prior_clips=2"],
     "features.speaker_norm.prior_clips: only for mode=running"),
    ("train", ["features.speaker_norm.mode=running", "features.speaker_norm.prior_clips=0"],
     "features.speaker_norm.prior_clips: 0"),
    ("cv", ["features.speaker_norm.mode=running", "features.speaker_norm.prior_clips=many"],
     "features.speaker_norm.prior_clips"),
    ("cv", ["data.text_source=whisper"], "data.text_source"),
    ("cv", ["data.text_source=asr_no_such_model"], "asr_no_such_model"),
    ("cv", ["data.manifest=MISSING_DIR/none.csv"], "data.manifest"),
    ("cv", ["split.protocol=file"], "split.folds_file"),
    ("train", ["features.speaker_norm.mode=transductive"], "features.speaker_norm.mode=transductive"),
    ("train", ["train.max_epochs=0"], "train.max_epochs"),
    ("train", ["features.audio_layers=top"], "features.audio_layers"),
    ("ablate", ["ablation=[audio_only,fused]"], "ablation"),
    ("ablate", ["ablation_overrides.concat=[features.frame_stride=2]"], "ablation_overrides.concat"),
    ("ablate", ["text_sources=[gold,asr_x]"], "asr_x"),
    ("cv", ["data.manifests=[MISSING_DIR/b.csv]"], "data.manifests"),
    ("cv", ["split.utterance_folds=1"], "split.utterance_folds"),
    ("cv", ["model.finetune.top_layers=2"], "features.audio_layers=all"),  # the experiment reads the last layer only
    ("cv", ["model.finetune.top_layers=1", "features.audio_layers=all", "features.whisper_window=30s"],
     "features.whisper_window=clip"),
    ("train", ["model.finetune.top_layers=1", "features.audio_layers=all", "features.speaker_norm.mode=enrol",
               "features.speaker_norm.clips=2"], "model.finetune.top_layers"),
    ("cv", ["model.finetune.lr=0"], "model.finetune.lr"),
    ("cv", ["model.finetune.top_layers=most"], "model.finetune.top_layers"),
    ("cv", ["model.finetune.top_layers=-1"], "model.finetune.top_layers"),
    ("train", ["model.finetune.top_layers=all"], "features.audio_layers=all"),
    ("cv", ["model.finetune.top_layers=all", "features.audio_layers=all", "features.augment.time_mask=0.1"],
     "features.augment.time_mask"),
    ("cv", ["model.finetune.top_layers=all", "features.audio_layers=all", "features.speaker_norm.mode=instance"],
     "model.finetune.top_layers"),
    ("ablate", ["ablation_overrides.concat=[model.finetune.top_layers=1]"], "ablation_overrides.concat"),
    ("cv", ["train.length_buckets=-1"], "train.length_buckets"),
]


@pytest.mark.parametrize("command, extra, named", CASES, ids=[f"{c}-{e[0]}" for c, e, _ in CASES])
def test_wrong_config_value_stops_before_any_work(experiment, capsys, command, extra, named):
    cache = experiment / f"cache-{command}-{abs(hash(extra[0]))}"
    args = [command, str(experiment / "exp.yaml"), f"data.manifest={experiment / 'a.csv'}",
            f"features.cache_dir={cache}", "--out", str(experiment / "out" / command), *extra]
    args = [a.replace("MISSING_DIR", str(experiment / "missing")) for a in args]
    start = time.perf_counter()
    code = main(args)
    took = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2, err
    assert named in err and err.startswith("mmser: error:") and "Traceback" not in err
    assert took < LIMIT_S
    assert not cache.exists(), "something was encoded before the error"
    assert not (experiment / "out" / command).exists()


PREDICT_CASES = [  # (arguments after the clip, what the message must name)
    (["--checkpoint", "CKPT_DIR/none.safetensors"], "none.safetensors"),
    (["--checkpoint", "CKPT_DIR/pickle.safetensors"], "pickle.safetensors"),
    (["--checkpoint", "CKPT_DIR/pickle.safetensors", "--window", "0"], "--window"),
    (["--checkpoint", "CKPT_DIR/pickle.safetensors", "--batch-size", "0"], "--batch-size"),
    (["--checkpoint", "CKPT_DIR/pickle.safetensors", "--transcript", "hi", "--transcribe"], "--transcribe"),
    (["CKPT_DIR/no_clip.wav", "--checkpoint", "CKPT_DIR/pickle.safetensors"], "no_clip.wav"),
    (["--checkpoint", "CKPT_DIR/pickle.safetensors", "--enrol", "CKPT_DIR/no_enrol.wav"], "no_enrol.wav"),
]


@pytest.mark.parametrize("extra, named", PREDICT_CASES, ids=[n for _, n in PREDICT_CASES])
def test_wrong_predict_input_stops_before_loading_anything(experiment, capsys, extra, named):
    import pickle

    (experiment / "pickle.safetensors").write_bytes(pickle.dumps({"weights": [1, 2]}))
    clip = sorted((experiment / "a").glob("*.wav"))[0]
    args = ["predict", str(clip), *[a.replace("CKPT_DIR", str(experiment)) for a in extra]]
    start = time.perf_counter()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and named in err and err.startswith("mmser: error:") and "Traceback" not in err
    assert time.perf_counter() - start < LIMIT_S


def test_the_cases_cover_every_experiment_command():
    assert {c for c, _, _ in CASES} == {"cv", "train", "ablate"} and len(CASES) + len(PREDICT_CASES) >= 12
