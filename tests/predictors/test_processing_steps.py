"""Preprocessing and postprocessing steps on small, hand-checked inputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from carml.manifest.model import InputSpec
from carml.manifest.steps import Decode, Frame, NonMaxSuppression, Resize, SpeechSegments
from predictors.context import ItemContext
from predictors.postprocessing import non_max_suppression, speech_segments
from predictors.preprocessing import ItemError, decode_image, frame_audio, preprocess_input, resize_image


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_gives_requested_color_order() -> None:
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    pixel[..., 0] = 200  # pure red
    ctx = ItemContext()
    rgb = decode_image(_png(pixel), Decode(color_mode="rgb"), ctx)
    bgr = decode_image(_png(pixel), Decode(color_mode="bgr"), ctx)
    gray = decode_image(_png(pixel), Decode(color_mode="grayscale"), ctx)
    assert rgb[0, 0].tolist() == [200, 0, 0]
    assert bgr[0, 0].tolist() == [0, 0, 200]
    assert gray.shape == (2, 2, 1) and gray[0, 0, 0] == 60  # 0.299 * 200
    assert ctx.original_size == (2, 2)


def test_undecodable_bytes_are_an_item_error() -> None:
    with pytest.raises(ItemError, match="cannot decode image"):
        decode_image(b"not an image", Decode(), ItemContext())


def test_letterbox_records_geometry_for_boxes() -> None:
    ctx = ItemContext(original_size=(100, 200))
    out = resize_image(
        np.full((100, 200, 3), 255, np.uint8), Resize(size=(100, 100), keep_aspect=True, crop="none"), ctx
    )
    assert out.shape == (100, 100, 3)
    assert out[:25].max() == 0 and out[25:75].min() == 255 and out[75:].max() == 0  # centred, padded
    # The model pixel (50, 50) is the original image's centre (100, 50).
    assert ctx.to_original(50, 50) == (100.0, 50.0)


def test_center_crop_keeps_aspect() -> None:
    ctx = ItemContext(original_size=(100, 200))
    image = np.zeros((100, 200, 1), np.uint8)
    image[:, 50:150] = 255
    out = resize_image(image, Resize(size=(50, 50), keep_aspect=True, crop="center", method="nearest"), ctx)
    assert out.shape == (50, 50, 1) and out.min() == 255  # only the middle square remains


def test_area_resize_inverts_nearest_upscaling() -> None:
    small = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    big = np.kron(small, np.ones((4, 4), dtype=np.uint8))
    out = resize_image(big[:, :, None], Resize(size=(8, 8), method="area"), ItemContext())
    assert np.array_equal(out[:, :, 0], small)


def test_shape_mismatch_is_explained() -> None:
    spec = InputSpec(name="x", type="image", shape=[3, 8, 8], preprocessing=[Decode(layout="CHW")])
    with pytest.raises(ItemError, match=r"gave shape \[3, 4, 4\], the manifest declares \[3, 8, 8\]"):
        preprocess_input(spec, _png(np.zeros((4, 4, 3), np.uint8)), ItemContext())


def test_frames_carry_the_previous_tail() -> None:
    ctx = ItemContext()
    frames = frame_audio(np.arange(10, dtype=np.float32), Frame(frame_samples=4, context_samples=2), ctx)
    assert frames.tolist() == [[0, 0, 0, 1, 2, 3], [2, 3, 4, 5, 6, 7], [6, 7, 8, 9, 0, 0]]
    assert ctx.frame_samples == 4


def test_nms_per_class_and_across_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], dtype=np.float64)
    classes = np.array([0, 0, 1])
    scores = np.array([0.9, 0.8, 0.7])
    assert non_max_suppression(boxes, classes, scores, NonMaxSuppression(iou_threshold=0.5)) == [0, 2]
    assert non_max_suppression(boxes, classes, scores, NonMaxSuppression(iou_threshold=0.5, per_class=False)) == [0]


def test_speech_segments_follow_silero_rules() -> None:
    ctx = ItemContext(sample_rate=16000, frame_samples=512, duration_s=100 * 512 / 16000)
    probs = np.zeros(100)
    probs[10:40] = 0.9  # ~0.96 s of speech
    probs[41] = 0.9  # a one-frame dip does not split the segment
    probs[60:62] = 0.9  # 64 ms: shorter than min_speech_ms, dropped
    segments = speech_segments(probs, SpeechSegments(), ctx)
    assert len(segments) == 1
    assert segments[0]["start_s"] == pytest.approx((10 * 512 - 480) / 16000, abs=1e-3)
    assert segments[0]["end_s"] == pytest.approx((42 * 512 + 480) / 16000, abs=1e-3)


def test_two_resizes_compose_into_one_mapping() -> None:
    ctx = ItemContext(original_size=(100, 200))
    image = np.zeros((100, 200, 3), np.uint8)
    step_one = resize_image(image, Resize(size=(100, 100), keep_aspect=True), ctx)  # letterbox to 100x100
    resize_image(step_one, Resize(size=(50, 50)), ctx)  # then halve
    # Model pixel (25, 25) is the centre of the halved letterbox, i.e. the original image's centre.
    assert ctx.to_original(25, 25) == (100.0, 50.0)


def test_sixteen_bit_and_rotated_images_decode_faithfully() -> None:
    deep = np.full((4, 4), 1000 * 64, dtype=np.uint16)  # 64000 of 65535: bright, not saturated
    buffer = io.BytesIO()
    Image.fromarray(deep).save(buffer, format="PNG")
    gray = decode_image(buffer.getvalue(), Decode(color_mode="grayscale"), ItemContext())
    assert gray[0, 0, 0] == 64000 >> 8

    wide = np.zeros((2, 6, 3), np.uint8)  # 6 wide, 2 high, tagged "rotate 90" in EXIF
    rotated = Image.fromarray(wide)
    exif = rotated.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    rotated.save(buffer, format="JPEG", exif=exif)
    ctx = ItemContext()
    decode_image(buffer.getvalue(), Decode(), ctx)
    assert ctx.original_size == (6, 2)  # shown upright: 2 wide, 6 high


def test_truncated_and_invalid_wav_are_item_errors() -> None:
    from carml.manifest.steps import DecodeAudio
    from predictors.preprocessing import decode_audio

    header = io.BytesIO()
    import wave

    with wave.open(header, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x01\x00" * 8)  # four stereo frames ...
    truncated = header.getvalue()[:-2]  # ... of which the file keeps three and a half
    samples = decode_audio(truncated, DecodeAudio(sample_rate=16000), ItemContext())
    assert samples.size == 3
    with pytest.raises(ItemError, match="cannot decode audio"):
        decode_audio(b"RIFF....WAVEjunk", DecodeAudio(sample_rate=16000), ItemContext())


def test_labels_that_do_not_fit_the_output_are_refused() -> None:
    from carml.manifest.model import OutputSpec
    from predictors.postprocessing import postprocess_output

    spec = OutputSpec(name="logits", type="class-logits")
    with pytest.raises(ItemError, match="scores 3 classes but its labels list 2"):
        postprocess_output(np.zeros(3), spec, ["a", "b"], ItemContext())
