"""Pretrained models that ship inside package wheels run offline and give plausible answers."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from support import SAMPLES

from carml.runs import predict_files
from carml.settings import load_settings


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CARML_CACHE_DIR", str(tmp_path / "cache"))
    return load_settings()


def test_nudenet_finds_the_astronauts_face(settings) -> None:
    result = predict_files(settings, "nudenet-detector", [SAMPLES / "astronaut.jpg"])
    detections = result["predictions"][0]["outputs"]["output0"]["detections"]
    faces = [d for d in detections if d["label"] == "FACE_FEMALE"]
    assert faces and faces[0]["score"] > 0.5
    x1, y1, x2, y2 = faces[0]["box_xyxy"]
    # Eileen Collins' face in scikit-image's astronaut picture lies around x 170-280, y 80-180.
    assert 150 < x1 < 200 and 60 < y1 < 110 and 250 < x2 < 300 and 160 < y2 < 210


def test_nudenet_finds_nothing_in_a_blank_image(settings, tmp_path) -> None:
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 300), (128, 128, 128)).save(blank)
    result = predict_files(settings, "nudenet-detector", [blank])
    assert result["predictions"][0]["outputs"]["output0"]["detections"] == []


def test_silero_finds_the_two_spoken_sentences(settings) -> None:
    # speech.wav: 1.0 s silence, a sentence (to 3.47 s), 1.5 s silence, the sentence again (4.97-7.44 s).
    result = predict_files(settings, "silero-vad", [SAMPLES / "speech.wav"])
    segments = result["predictions"][0]["outputs"]["speech_probs"]["segments"]
    assert len(segments) == 2
    for segment, (start, end) in zip(segments, [(1.0, 3.47), (4.97, 7.44)], strict=True):
        assert abs(segment["start_s"] - start) < 0.15 and abs(segment["end_s"] - end) < 0.2


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return buffer.getvalue()


def test_silero_hears_no_speech_in_noise_and_resamples_other_rates(settings, tmp_path) -> None:
    noise = tmp_path / "noise-44k.wav"
    noise.write_bytes(_wav_bytes(np.random.default_rng(0).normal(0, 0.05, 44100 * 3), 44100))
    result = predict_files(settings, "silero-vad", [noise])
    output = result["predictions"][0]["outputs"]["speech_probs"]
    assert output["segments"] == []
    assert output["frames"] == 94  # 3 s at 16 kHz in 512-sample frames


def test_silero_at_8khz_keeps_the_segments(settings, tmp_path) -> None:
    from scipy.signal import resample_poly

    with wave.open(str(SAMPLES / "speech.wav")) as wav:
        speech = np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float32) / 32768
    low_rate = tmp_path / "speech-8k.wav"
    low_rate.write_bytes(_wav_bytes(resample_poly(speech, 1, 2), 8000))
    result = predict_files(settings, "silero-vad", [low_rate])
    segments = result["predictions"][0]["outputs"]["speech_probs"]["segments"]
    assert len(segments) == 2
