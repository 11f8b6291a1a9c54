import numpy as np
import pytest
import soundfile as sf

from mmser.audio import (SAMPLE_RATE, AudioError, ChunkResampler, decode_audio, file_sha256, load_audio, resample,
                         to_waveform)
from tests.conftest import write_tone


@pytest.mark.parametrize("sr", [8_000, 16_000, 22_050, 44_100, 48_000])
def test_any_rate_becomes_16k_with_duration_kept(tmp_path, sr):
    wav = load_audio(write_tone(tmp_path / "a.wav", seconds=1.0, sr=sr))
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(wav.size - SAMPLE_RATE) <= 2
    assert np.abs(wav).max() <= 1.0


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_mixed_to_mono(tmp_path, channels):
    wav = load_audio(write_tone(tmp_path / "a.wav", channels=channels))
    mono = load_audio(write_tone(tmp_path / "b.wav", channels=1))
    assert wav.shape == mono.shape
    np.testing.assert_allclose(wav, mono, atol=1e-4)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "FLOAT"])
def test_sample_formats(tmp_path, subtype):
    path = write_tone(tmp_path / "a.wav", subtype=subtype)
    assert load_audio(path).size > 0


def test_flac_and_ogg(tmp_path):
    assert load_audio(write_tone(tmp_path / "a.flac")).size > 0
    assert load_audio(write_tone(tmp_path / "a.ogg", subtype="VORBIS")).size > 0


def test_aiff_and_opus_are_read_and_a_phone_m4a_names_the_conversion(tmp_path):
    tone = load_audio(write_tone(tmp_path / "a.wav"))
    aiff = load_audio(write_tone(tmp_path / "a.aiff"))
    np.testing.assert_allclose(aiff, tone, atol=1e-4)
    sf.write(tmp_path / "rec.opus", sf.read(tmp_path / "a.wav")[0], 16_000, format="OGG", subtype="OPUS")
    assert abs(load_audio(tmp_path / "rec.opus").size - tone.size) < 0.1 * tone.size
    (tmp_path / "memo.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))  # AAC: never read by libsndfile
    with pytest.raises(AudioError, match=r"memo.m4a: unreadable audio \(.*\): libsndfile does not read \.m4a audio; "
                                         r"convert it first, e.g. ffmpeg -i in\.m4a -ac 1 -ar 16000 out\.wav"):
        load_audio(tmp_path / "memo.m4a")
    with pytest.raises(AudioError, match=r"^upload\.M4A: unreadable .*convert it first"):
        decode_audio((tmp_path / "memo.m4a").read_bytes(), "upload.M4A")


def test_errors_name_file_and_reason(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: empty file"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("not audio at all")
    with pytest.raises(AudioError, match=r"text.wav: unreadable audio \(Format not recognised.\)$"):
        load_audio(tmp_path / "text.wav")
    with pytest.raises(AudioError, match=r"^upload.wav: unreadable audio \(Format not recognised.\)$"):
        decode_audio(b"not audio at all", "upload.wav")  # no "<_io.BytesIO object at 0x...>" in the reason
    with pytest.raises(AudioError, match="short.wav: too short"):
        load_audio(write_tone(tmp_path / "short.wav", seconds=0.05))
    bad = np.zeros(16_000, dtype=np.float32)
    bad[100] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: NaN"):
        load_audio(tmp_path / "nan.wav")
    # digital silence: refused by every path (prepare, predict, uploads, arrays), not answered with the bias
    sf.write(tmp_path / "silent.wav", np.zeros((16_000, 2), dtype=np.float32), 16_000)
    with pytest.raises(AudioError, match=r"silent.wav: digital silence \(all samples are zero\)"):
        load_audio(tmp_path / "silent.wav")
    with pytest.raises(AudioError, match="up.wav: digital silence"):
        decode_audio((tmp_path / "silent.wav").read_bytes(), "up.wav")
    with pytest.raises(AudioError, match="<waveform>: digital silence"):
        to_waveform(np.zeros(8_000, dtype=np.float32), 8_000)


def test_truncated_file(tmp_path):
    path = write_tone(tmp_path / "t.wav", seconds=1.0)
    data = path.read_bytes()
    path.write_bytes(data[:30])
    with pytest.raises(AudioError, match="t.wav"):
        load_audio(path)


def test_hash_changes_with_content(tmp_path):
    a, b = write_tone(tmp_path / "a.wav", seed=1), write_tone(tmp_path / "b.wav", seed=2)
    assert file_sha256(a) != file_sha256(b)
    assert file_sha256(a) == file_sha256(a)


@pytest.mark.parametrize("subtype,dtype", [("PCM_16", np.int16), ("PCM_32", np.int32), ("PCM_U8", np.uint8)])
def test_integer_array_is_scaled_as_its_file_is_read(tmp_path, subtype, dtype):
    """An integer PCM array (scipy.io.wavfile's int16, say) gives the waveform of the same samples in a file."""
    path = write_tone(tmp_path / "a.wav", seconds=0.5, subtype=subtype)
    pcm, sr = sf.read(path, dtype="int16" if dtype == np.uint8 else dtype.__name__)
    if dtype == np.uint8:  # soundfile reads no uint8: 8-bit PCM is unsigned, centred on 128
        pcm = (pcm.astype(np.int32) // 256 + 128).astype(np.uint8)
    from_array = to_waveform(pcm, sr)
    np.testing.assert_allclose(from_array, load_audio(path), atol=1e-6)
    assert 0.1 < np.abs(from_array).max() <= 1.0  # not clipped into a square wave


def test_float_audio_far_beyond_full_scale_is_refused_on_every_path(tmp_path):
    """Integer PCM values stored as float would be clipped into a square wave: refused, naming the fix."""
    tone = sf.read(write_tone(tmp_path / "a.wav", seconds=0.5), dtype="float32")[0]
    sf.write(tmp_path / "int_units.wav", tone * 32767, 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"int_units.wav: samples reach [\d.e+]+ times full scale.*divide it by 32768"):
        load_audio(tmp_path / "int_units.wav")
    with pytest.raises(AudioError, match="up.wav: samples reach"):
        decode_audio((tmp_path / "int_units.wav").read_bytes(), "up.wav")
    with pytest.raises(AudioError, match="<waveform>: samples reach"):
        to_waveform(tone * 32767, 16_000)
    hot = to_waveform(tone / np.abs(tone).max() * 1.5, 16_000)  # a little over full scale: clipped, kept
    assert np.abs(hot).max() == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000, SAMPLE_RATE])
def test_audio_resampled_chunk_by_chunk_equals_the_whole_signal_resampled(rate):
    """A live stream at any rate, in chunks of any size (1 sample to 0.2 s), comes out as resample() makes the
    whole signal: same length, same samples (float32 summation order aside), and little input kept back."""
    rng = np.random.default_rng(rate)
    t = np.arange(int(2.3 * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)  # (n,)
    resampler, pieces, start = ChunkResampler(rate), [], 0
    while start < len(x):
        n = int(rng.choice([1, 7, int(rng.integers(1, rate // 5))]))
        pieces.append(resampler.push(x[start:start + n]))
        start += n
        assert len(resampler.kept) < 0.1 * rate  # < 100 ms: the kernel's margin and a block or two, not the stream
    pieces.append(resampler.flush())
    whole = resample(x, rate, SAMPLE_RATE)
    streamed = np.concatenate(pieces)
    assert streamed.dtype == np.float32 and len(streamed) == len(whole)
    assert np.abs(streamed - whole).max() < 1 / 32768  # under one PCM16 step (float32 sums in another order)
    assert resampler.received == len(x)
