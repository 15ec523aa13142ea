"""The audio stream: WAV soundtracks per naturalistic run, windows aligned to TRs, and the
audio encoders (wav2vec 2.0, HuBERT, Whisper's encoder) against transformers itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.io import wavfile
from scipy.signal import resample_poly

from brainalign.config import task_conditions
from brainalign.features import ModelSpec, load_extractor
from brainalign.features.audio_windows import load_track, read_wav, tr_windows
from brainalign.features.cache import feature_cache_key
from brainalign.features.extract import extract_concept_features, extract_naturalistic_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TR, N_TRS, RATE = 1.0, 6, 16000


def _tone(seconds: float, rate: int, freq: float) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def _soundtrack(rate: int, seed: int) -> np.ndarray:
    """One tone per TR (frequencies and levels drawn), then 0.5 s after the last volume."""
    rng = np.random.default_rng(seed)
    parts = [rng.uniform(0.2, 1) * _tone(TR, rate, rng.uniform(100, 2000)) for _ in range(N_TRS)]
    return np.concatenate([*parts, np.zeros(rate // 2)])


@pytest.fixture
def audio_stim(tmp_path):
    """A stimuli folder with two runs: a 16-bit stereo WAV at 44.1 kHz and a float mono one."""
    audio = tmp_path / "naturalistic" / "audio"
    audio.mkdir(parents=True)
    left = _soundtrack(44100, 1)
    stereo = np.stack([left, 0.5 * left], axis=1)
    wavfile.write(audio / "run-01.wav", 44100, np.round(stereo * 32767).astype(np.int16))
    wavfile.write(audio / "run-02.wav", RATE, _soundtrack(RATE, 2).astype(np.float32))
    runs = pd.DataFrame({"run": [1, 2], "tr": TR, "n_trs": N_TRS,
                         "audio": ["naturalistic/audio/run-01.wav", "naturalistic/audio/run-02.wav"]})
    runs.to_csv(tmp_path / "naturalistic" / "runs.tsv", sep="\t", index=False)
    return tmp_path


def _spec(arch: str, **extra) -> ModelSpec:
    cfg = {"extractor": "audio_encoder", "source": "tiny", "id": arch, "layers": [0, 1, 2], **extra}
    return ModelSpec.from_config(f"tiny-{arch}", cfg, 0)


def test_read_wav_mixes_channels_scales_integers_and_resamples(audio_stim):
    samples, rate = read_wav(audio_stim / "naturalistic/audio/run-01.wav")
    assert rate == 44100 and samples.dtype == np.float32 and samples.ndim == 1
    expected = 0.75 * _soundtrack(44100, 1)  # mean of the channels (1 and 0.5 of the track)
    np.testing.assert_allclose(samples, expected, atol=2 / 32767)
    track = load_track(audio_stim / "naturalistic/audio/run-01.wav", RATE)
    reference = resample_poly(samples.astype(np.float64), 160, 441)  # 44100 -> 16000
    np.testing.assert_allclose(track, reference, atol=1e-6)


def test_tr_windows_cut_each_volume_and_refuse_a_short_track():
    track = np.arange(10 * RATE, dtype=np.float32)
    windows = tr_windows(track, RATE, 4, 2.5, source="x.wav")
    assert windows.shape == (4, int(2.5 * RATE))
    assert windows[3, 0] == 3 * 2.5 * RATE and windows[3, -1] == 10 * RATE - 1
    with pytest.raises(ValueError, match=r"^audio file 'x.wav' lasts 10.00 s but the run has 5 "
                       r"volumes of 2.5 s \(12.50 s\); expected a soundtrack covering the run"):
        tr_windows(track, RATE, 5, 2.5, source="x.wav")


def test_bad_soundtracks_get_one_line_errors(audio_stim):
    with pytest.raises(FileNotFoundError, match=r"audio file '.*nope.wav' \(runs.tsv column 'audio'\) does not exist"):
        read_wav(audio_stim / "nope.wav")
    (audio_stim / "bad.wav").write_bytes(b"RIFF-not-a-wave")
    with pytest.raises(ValueError, match=r"audio file '.*bad.wav' is not a readable WAV file .*Convert it"):
        read_wav(audio_stim / "bad.wav")
    runs = pd.read_csv(audio_stim / "naturalistic/runs.tsv", sep="\t").drop(columns="audio")
    runs.to_csv(audio_stim / "naturalistic/runs.tsv", sep="\t", index=False)
    extractor = load_extractor(_spec("wav2vec2"))
    with pytest.raises(ValueError, match=r"runs.tsv' has no column 'audio'; the audio condition "
                       r"needs a WAV file per run"):
        extract_naturalistic_features(extractor, audio_stim, "audio")


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert", "whisper"])
def test_audio_features_are_the_encoders_own_hidden_states_per_tr(audio_stim, arch):
    extractor = load_extractor(_spec(arch))
    arrays, meta = extract_naturalistic_features(extractor, audio_stim, "audio")
    assert meta["streams"] == ["audio"] and arrays["layer-02"].shape == (2 * N_TRS, 32)
    np.testing.assert_array_equal(arrays["run"], np.repeat([1, 2], N_TRS))
    # reference: transformers' own feature extractor and model on run 2, TR 3's second
    window = _soundtrack(RATE, 2)[3 * RATE:4 * RATE].astype(np.float32)
    inputs = extractor.feature_extractor([window], sampling_rate=RATE, return_tensors="pt")
    with torch.inference_mode():
        if arch == "whisper":
            states = extractor.model.get_encoder()(inputs["input_features"], output_hidden_states=True).hidden_states
            frames = states[2].shape[1] * RATE // extractor.feature_extractor.n_samples  # 1 s of 4
            expected = states[2][0, :frames].mean(0)
        else:
            states = extractor.model(inputs["input_values"], output_hidden_states=True).hidden_states
            expected = states[2][0].mean(0)
    np.testing.assert_allclose(arrays["layer-02"][N_TRS + 3], expected.numpy(), rtol=1e-4, atol=1e-5)
    # the TRs differ (each holds its own tone), and the 44.1 kHz stereo run is read too
    assert np.abs(np.diff(arrays["layer-02"][:N_TRS], axis=0)).sum(axis=1).min() > 0


def test_audio_runs_only_on_naturalistic_tasks(audio_stim, stim):
    extractor = load_extractor(_spec("wav2vec2"))
    with pytest.raises(ValueError, match=r"^condition 'audio' reads the soundtrack of naturalistic "
                       r"runs .*; the concept task has none"):
        extract_concept_features(extractor, stim, "audio")
    config = {
        "dataset": {"tasks": {"c": {"kind": "concepts", "conditions": None},
                              "n": {"kind": "naturalistic", "conditions": None}}},
        "models": {"wav": {"extractor": "audio_encoder"}, "clip": {"extractor": "clip"}},
        "conditions": ["image", "audio"],
    }
    assert task_conditions(config, "c", "wav") == [] and task_conditions(config, "n", "wav") == ["audio"]
    assert task_conditions(config, "c", "clip") == ["image"] == task_conditions(config, "n", "clip")


def test_the_cache_key_follows_the_soundtracks(audio_stim):
    spec = _spec("wav2vec2")
    key, record = feature_cache_key(spec, audio_stim, "naturalistic", "audio")
    path = audio_stim / "naturalistic/audio/run-02.wav"
    wavfile.write(path, RATE, (0.9 * _soundtrack(RATE, 2)).astype(np.float32))
    assert feature_cache_key(spec, audio_stim, "naturalistic", "audio")[0] != key
