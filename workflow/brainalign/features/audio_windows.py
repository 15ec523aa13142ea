"""The soundtrack of naturalistic runs, cut into one window per TR (torch-free).

``naturalistic/runs.tsv`` names each run's soundtrack in an optional ``audio`` column: a
WAV file, relative to the stimuli folder (e.g. ``naturalistic/audio/run-01.wav``). Time 0
of the file is the start of the run's first volume. Any sample rate, bit depth (16- or
32-bit integer, 32- or 64-bit float) and channel count is read: channels are averaged to
mono, integers scaled to [-1, 1], and the track is resampled to the audio model's rate
with a polyphase filter (:func:`scipy.signal.resample_poly`).

TR ``k`` of a run gets the audio of its acquisition interval ``[k * tr, (k + 1) * tr)``,
the same interval whose midpoint ``(k + 0.5) * tr`` the text and image streams are
resampled to; each window is encoded on its own (no context across TRs), and the model's
frames are averaged over it. A track shorter than ``n_trs * tr`` is an error; audio after
the last volume is ignored (logged).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import wavfile
from scipy.signal import resample_poly

__all__ = ["AUDIO_COLUMN", "read_wav", "load_track", "tr_windows", "run_windows", "audio_files"]

logger = logging.getLogger(__name__)

#: Column of naturalistic/runs.tsv naming each run's WAV file.
AUDIO_COLUMN = "audio"
_INT_SCALE = {np.dtype("int16"): 2.0**15, np.dtype("int32"): 2.0**31}


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A WAV file as mono float32 in [-1, 1] and its sample rate.

    Parameters
    ----------
    path : path
        A PCM (16/32-bit integer, 8-bit unsigned) or IEEE float WAV file.

    Returns
    -------
    samples : ndarray of shape (n_samples,), float32
    rate : int
        Samples per second.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file; a file that is not a readable WAV, or holds no sample.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"audio file '{path}' (runs.tsv column '{AUDIO_COLUMN}') does not exist; fix the "
            "path (relative to the stimuli folder) or add the file"
        )
    try:
        rate, data = wavfile.read(path)
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(
            f"audio file '{path}' is not a readable WAV file ({err}); expected PCM or float "
            "WAV. Convert it, e.g. ffmpeg -i in.mp4 -ac 1 -ar 16000 out.wav"
        ) from None
    samples = _to_float(np.asarray(data), path)
    if samples.ndim == 2:  # (n_samples, n_channels): the mean of the channels
        samples = samples.mean(axis=1, dtype=np.float64).astype(np.float32)
    if samples.size == 0 or rate <= 0:
        raise ValueError(f"audio file '{path}' holds no samples (rate {rate}); replace it")
    return samples, int(rate)


def _to_float(data: np.ndarray, path: Path) -> np.ndarray:
    if data.dtype == np.uint8:
        return ((data.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if data.dtype in _INT_SCALE:
        return (data / _INT_SCALE[data.dtype]).astype(np.float32)
    if data.dtype.kind == "f":
        if not np.isfinite(data).all():
            raise ValueError(f"audio file '{path}' has NaN or infinite samples; fix the file")
        return data.astype(np.float32)
    raise ValueError(f"audio file '{path}': unsupported sample type {data.dtype}")


def load_track(path: str | os.PathLike, rate: int) -> np.ndarray:
    """A WAV file as mono float32 at ``rate`` samples per second (polyphase resampling)."""
    samples, native = read_wav(path)
    if native == rate:
        return samples
    divisor = math.gcd(int(rate), native)
    resampled = resample_poly(samples.astype(np.float64), rate // divisor, native // divisor)
    return resampled.astype(np.float32)


def tr_windows(track: np.ndarray, rate: int, n_trs: int, tr: float, *, source: str = "") -> np.ndarray:
    """One window of ``round(tr * rate)`` samples per TR: ``[k * tr, (k + 1) * tr)``.

    Parameters
    ----------
    track : ndarray of shape (n_samples,)
    rate : int
    n_trs : int
    tr : float
        Seconds.
    source : str
        The file, for messages.

    Returns
    -------
    ndarray of shape (n_trs, round(tr * rate)), float32
        Window ``k`` starts at sample ``round(k * tr * rate)``.

    Raises
    ------
    ValueError
        When the track ends before the last volume does.
    """
    width = int(round(tr * rate))
    starts = np.round(np.arange(n_trs) * tr * rate).astype(np.int64)
    needed = int(starts[-1] + width) if n_trs else 0
    if len(track) < needed:
        raise ValueError(
            f"audio file '{source}' lasts {len(track) / rate:.2f} s but the run has {n_trs} "
            f"volumes of {tr} s ({n_trs * tr:.2f} s); expected a soundtrack covering the run "
            "from its first volume. Fix runs.tsv 'n_trs' or the file."
        )
    if len(track) > needed + width:
        logger.info("audio '%s': %.2f s after the last volume ignored", source,
                    (len(track) - needed) / rate)
    return np.stack([track[s:s + width] for s in starts]).astype(np.float32)


def audio_files(stimuli_dir: str | os.PathLike, runs: pd.DataFrame) -> list[str]:
    """The ``audio`` entries of runs.tsv (paths relative to the stimuli folder).

    Raises
    ------
    ValueError
        When the column is missing or a run has no file.
    """
    table = Path(stimuli_dir) / "naturalistic" / "runs.tsv"
    if AUDIO_COLUMN not in runs.columns:
        raise ValueError(
            f"'{table}' has no column '{AUDIO_COLUMN}'; the audio condition needs a WAV file "
            "per run (path relative to the stimuli folder). Add the column, or drop condition "
            "'audio'."
        )
    missing = [int(r) for r, a in zip(runs["run"], runs[AUDIO_COLUMN]) if pd.isna(a) or not str(a).strip()]
    if missing:
        raise ValueError(
            f"'{table}' column '{AUDIO_COLUMN}' is empty for runs {missing}; give every run "
            "its soundtrack"
        )
    return [str(a).strip() for a in runs[AUDIO_COLUMN]]


def run_windows(
    stimuli_dir: str | os.PathLike, runs: pd.DataFrame, rate: int
) -> Iterator[np.ndarray]:
    """Each run's TR windows at ``rate``, run by run in table order (one track in memory).

    Yields
    ------
    ndarray of shape (n_trs, round(tr * rate)), float32
    """
    root = Path(stimuli_dir)
    for rel, (tr, n_trs) in zip(audio_files(root, runs), runs[["tr", "n_trs"]].itertuples(index=False)):
        track = load_track(root / rel, rate)
        yield tr_windows(track, rate, int(n_trs), float(tr), source=str(root / rel))
