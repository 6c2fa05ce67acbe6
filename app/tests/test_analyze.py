from __future__ import annotations

import io
import math
import wave

import numpy as np
import pytest

from wavgen import RATE, silence, speech_like, tone, wav_bytes

TONE_POWER = 0.5**2 / 2  # mean square of a sine of amplitude 0.5


def upload(client, data: bytes, name: str = "clip.wav", content_type: str = "audio/wav"):
    return client.post("/v1/analyze", files={"file": (name, data, content_type)})


def stored_count(client) -> int:
    return client.get("/v1/analyses", params={"limit": 100}).json()["count"]


def test_analyze_tone_with_silence_gaps(client) -> None:
    resp = upload(client, wav_bytes(speech_like()))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["sample_rate"] == RATE
    assert body["channels"] == 1
    assert body["sample_width_bits"] == 16
    assert body["frames"] == round(1.8 * RATE)
    assert body["duration_s"] == pytest.approx(1.8)
    # 1.0 s of tone in 1.8 s of audio
    expected_rms = 10 * math.log10(TONE_POWER * 1.0 / 1.8)
    assert body["rms_dbfs"] == pytest.approx(expected_rms, abs=0.01)
    assert body["peak_dbfs"] == pytest.approx(20 * math.log10(0.5), abs=0.01)
    assert body["vad"]["threshold_dbfs"] == -40.0
    assert body["vad"]["frame_ms"] == 20.0
    assert body["vad"]["segments"] == [
        {"start_s": 0.0, "end_s": 0.5},
        {"start_s": 1.0, "end_s": 1.5},
    ]
    assert body["backend"] == "numpy"
    assert body["filename"] == "clip.wav"
    assert resp.headers["location"] == f"/v1/analyses/{body['id']}"


def test_short_pause_is_bridged_and_click_dropped(client) -> None:
    signal = np.concatenate(
        [tone(0.3), silence(0.06), tone(0.3), silence(0.5), tone(0.02), silence(0.5)]
    )
    segments = upload(client, wav_bytes(signal)).json()["vad"]["segments"]
    assert segments == [{"start_s": 0.0, "end_s": 0.66}]


def test_threshold_is_configurable(make_client) -> None:
    quiet = np.concatenate([tone(0.5, amplitude=0.003), silence(0.5)])  # about -53 dBFS
    default = make_client()
    assert upload(default, wav_bytes(quiet)).json()["vad"]["segments"] == []
    sensitive = make_client(vad_threshold_dbfs=-60.0)
    segments = upload(sensitive, wav_bytes(quiet)).json()["vad"]["segments"]
    assert segments == [{"start_s": 0.0, "end_s": 0.5}]


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_sample_widths_and_channels(client, width: int, channels: int) -> None:
    body = upload(client, wav_bytes(speech_like(), width=width, channels=channels)).json()
    assert body["sample_width_bits"] == 8 * width
    assert body["channels"] == channels
    tolerance = 0.05 if width == 1 else 0.01  # 8-bit quantisation noise
    assert body["rms_dbfs"] == pytest.approx(10 * math.log10(TONE_POWER / 1.8), abs=tolerance)
    assert [(s["start_s"], s["end_s"]) for s in body["vad"]["segments"]] == [(0.0, 0.5), (1.0, 1.5)]


def test_stereo_with_one_silent_channel(client) -> None:
    left = speech_like()
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    body = upload(client, wav_bytes(stereo, channels=2)).json()
    # half the samples carry the tone: 3 dB below the mono figure
    assert body["rms_dbfs"] == pytest.approx(10 * math.log10(TONE_POWER / 1.8 / 2), abs=0.01)
    assert len(body["vad"]["segments"]) == 2


def test_digital_silence_reports_the_floor(client) -> None:
    body = upload(client, wav_bytes(silence(0.5))).json()
    assert body["rms_dbfs"] == -120.0
    assert body["peak_dbfs"] == -120.0
    assert body["vad"]["segments"] == []


def test_get_and_list(client) -> None:
    ids = [upload(client, wav_bytes(tone(0.1 * (i + 1))), name=f"c{i}.wav").json()["id"]
           for i in range(3)]
    one = client.get(f"/v1/analyses/{ids[1]}")
    assert one.status_code == 200
    assert one.json()["filename"] == "c1.wav"
    assert one.json()["duration_s"] == pytest.approx(0.2)
    listing = client.get("/v1/analyses").json()
    assert listing["count"] == 3
    assert [item["id"] for item in listing["items"]] == ids[::-1]  # newest first
    assert [i["id"] for i in client.get("/v1/analyses", params={"limit": 2}).json()["items"]] == ids[:0:-1]
    assert client.get("/v1/analyses", params={"limit": 0}).status_code == 422
    missing = client.get("/v1/analyses/99999")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_results_survive_a_restart(make_client, tmp_path) -> None:
    first = make_client(data_dir=tmp_path / "shared")
    analysis_id = upload(first, wav_bytes(tone(0.2))).json()["id"]
    second = make_client(data_dir=tmp_path / "shared")
    assert second.get(f"/v1/analyses/{analysis_id}").json()["duration_s"] == pytest.approx(0.2)


def _truncated() -> bytes:
    return wav_bytes(tone(0.5))[:-1000]


def _header_only() -> bytes:
    return wav_bytes(tone(0.5))[:30]


def _float_wav() -> bytes:
    """IEEE float WAV (format tag 3): valid WAV, but not PCM."""
    data = np.float32(tone(0.1)).tobytes()
    fmt = (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + RATE.to_bytes(4, "little")
    fmt += (RATE * 4).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt
    body += b"data" + len(data).to_bytes(4, "little") + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _no_frames() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (b"ID3\x03\x00 definitely an mp3, not a wav" * 10, 415, "not_wav"),
        (b"RIFF", 415, "not_wav"),
        (_truncated(), 422, "truncated_wav"),
        (_header_only(), 422, "truncated_wav"),
        (_float_wav(), 415, "unsupported_wav"),
        (_no_frames(), 422, "no_audio"),
    ],
    ids=["empty", "mp3", "riff-only", "truncated-data", "truncated-header", "float", "no-frames"],
)
def test_bad_input_is_rejected_and_not_stored(client, payload: bytes, status: int, code: str) -> None:
    resp = upload(client, payload)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == code
    assert stored_count(client) == 0


def test_missing_file_field(client) -> None:
    resp = client.post("/v1/analyze", data={"nofile": "x"})
    assert resp.status_code == 422
    assert stored_count(client) == 0


def test_upload_over_the_limit(make_client) -> None:
    client = make_client(max_upload_bytes=10_000)
    small = wav_bytes(tone(0.1))  # 3,244 bytes
    assert upload(client, small).status_code == 201
    big = wav_bytes(tone(1.0))  # 32,044 bytes: over the file limit, within the multipart slack
    resp = upload(client, big)
    assert resp.status_code == 413
    assert resp.json()["error"] == "too_large"
    assert stored_count(client) == 1


def test_oversized_body_refused_by_content_length(make_client) -> None:
    client = make_client(max_upload_bytes=10_000)
    resp = upload(client, wav_bytes(tone(4.0)) * 2)  # 256 KB: over limit + multipart slack
    assert resp.status_code == 413
    assert resp.json()["error"] == "too_large"
    assert stored_count(client) == 0


def test_oversized_chunked_body_is_cut_off(make_client) -> None:
    client = make_client(max_upload_bytes=10_000)
    boundary = "voxserveboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    payload = wav_bytes(tone(8.0))

    def chunks():  # a generator body is sent chunked, without Content-Length
        yield head
        for i in range(0, len(payload), 16_384):
            yield payload[i:i + 16_384]
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = client.post("/v1/analyze", content=chunks(),
                       headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 413
    assert resp.json()["error"] == "too_large"
    assert stored_count(client) == 0
