"""The demo film's soundtrack: a seeded sequence of sound events, one WAV file per run.

Each run is a sequence of events of 0.2-1.5 s, drawn independently of the transcript
and the frames (so that an audio-driven ROI is told apart from the language and visual
ones): harmonic tones (fundamental 110-880 Hz, 1-6 harmonics with a random spectral
tilt, vibrato), band-limited noise bursts (centre 300-5,000 Hz) and silences, each with
its own level and a 10 ms raised-cosine onset and offset. Written as 16-bit PCM mono at
16 kHz, the rate of the audio models (:mod:`brainalign.features.audio`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from ..io import atomic_write

__all__ = ["AUDIO_RATE", "synthesize_soundtrack", "write_soundtracks"]

#: Samples per second of the demo's WAV files.
AUDIO_RATE = 16000
_RAMP_S = 0.01


def _ramp(n: int, rate: int) -> np.ndarray:
    """Raised-cosine onset and offset of ``_RAMP_S`` seconds on an ``n``-sample event."""
    k = min(int(_RAMP_S * rate), n // 2)
    envelope = np.ones(n)
    if k:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        envelope[:k], envelope[n - k:] = rise, rise[::-1]
    return envelope


def _tone(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / rate
    f0 = 110.0 * 2 ** rng.uniform(0, 3)
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
    phase = 2 * np.pi * f0 * np.cumsum(vibrato) / rate
    tilt = rng.uniform(0.3, 0.9)
    harmonics = range(1, int(rng.integers(1, 7)) + 1)
    wave = sum(tilt ** (h - 1) * np.sin(h * phase) for h in harmonics if h * f0 < rate / 2)
    return wave / np.max(np.abs(wave))


def _noise_burst(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    centre = 300.0 * 2 ** rng.uniform(0, np.log2(5000 / 300))
    spectrum *= np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / centre) / 0.35) ** 2)
    wave = np.fft.irfft(spectrum, n)
    return wave / max(np.max(np.abs(wave)), 1e-12)


def synthesize_soundtrack(duration_s: float, *, random_state: np.random.Generator,
                          rate: int = AUDIO_RATE) -> np.ndarray:
    """One run's soundtrack.

    Parameters
    ----------
    duration_s : float
        Length in seconds.
    random_state : numpy Generator
    rate : int

    Returns
    -------
    ndarray of shape (round(duration_s * rate),), float32 in [-1, 1]
    """
    n_total = int(round(duration_s * rate))
    track = np.zeros(n_total)
    start = 0
    while start < n_total:
        n = min(int(random_state.uniform(0.2, 1.5) * rate), n_total - start)
        kind = random_state.choice(3, p=[0.5, 0.35, 0.15])
        level = random_state.uniform(0.1, 0.7)
        if kind < 2 and n > 1:
            wave = (_tone if kind == 0 else _noise_burst)(n, rate, random_state)
            track[start:start + n] = level * wave * _ramp(n, rate)
        start += n
    return np.clip(track, -1.0, 1.0).astype(np.float32)


def write_soundtracks(out_dir: str | os.PathLike, n_runs: int, duration_s: float, *,
                      random_state: np.random.Generator) -> list[str]:
    """Write ``naturalistic/audio/run-XX.wav`` (16-bit PCM, 16 kHz) for each run.

    Returns
    -------
    list of str
        The files, relative to ``out_dir`` (the stimuli folder), for runs.tsv's ``audio``.
    """
    names = []
    for run in range(1, n_runs + 1):
        rel = f"naturalistic/audio/run-{run:02d}.wav"
        track = synthesize_soundtrack(duration_s, random_state=random_state)
        pcm = np.round(track * 32767).astype(np.int16)
        with atomic_write(Path(out_dir) / rel) as tmp:
            wavfile.write(tmp, AUDIO_RATE, pcm)
        names.append(rel)
    return names
