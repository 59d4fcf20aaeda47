"""The encoder program, run as the worker runs it: a subprocess fed one JSON request on stdin.

Inputs are synthesized with PyAV (FFmpeg's testsrc/sine sources): 2 s 320x240 30 fps H.264 + AAC,
video-only, audio-only, and a file of random bytes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import defusedxml.ElementTree as ET
import pytest

from keyless.providers.media.encoding.presets import check_preset, plan

B = "#Microsoft.Media.BuiltInStandardEncoderPreset"
S = "#Microsoft.Media.StandardEncoderPreset"


def _frames(source: tuple[Any, Any]) -> Any:
    _graph, sink = source  # the graph must outlive its sink's pulls
    while True:
        try:
            yield sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError, BlockingIOError):
            return


def _source(name: str, args: str, fmt: tuple[str, str]) -> Any:
    graph = av.filter.Graph()
    src, conv = graph.add(name, args), graph.add(*fmt)
    sink = graph.add("abuffersink" if name == "sine" else "buffersink")
    src.link_to(conv)
    conv.link_to(sink)
    graph.configure()
    if name == "sine":
        graph.set_audio_frame_size(1024)
    return graph, sink


def make_clip(path: Path, video: bool = True, audio: bool = True, seconds: float = 2.0) -> Path:
    out = av.open(str(path), "w")
    vs = as_ = None
    if video:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = 320, 240, "yuv420p"
        vs.options = {"preset": "ultrafast"}
    if audio:
        as_ = out.add_stream("aac", rate=48000)
        as_.layout = "stereo"
    if vs is not None:
        for f in _frames(
            _source("testsrc", f"size=320x240:rate=30:duration={seconds}", ("format", "yuv420p"))
        ):
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    if as_ is not None:
        fmt = ("aformat", "sample_fmts=fltp:channel_layouts=stereo")
        for f in _frames(_source("sine", f"frequency=440:sample_rate=48000:duration={seconds}", fmt)):
            f.pts = None
            out.mux(as_.encode(f))
        out.mux(as_.encode(None))
    out.close()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    junk = d / "notes.bin"
    junk.write_bytes(os.urandom(4096))
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "av": make_clip(d / "clip.mp4"),
        "video": make_clip(d / "silent.mp4", audio=False),
        "audio": make_clip(d / "song.m4a", video=False),
        "junk": junk,
        "empty": empty,
    }


def encode(
    preset: dict[str, Any],
    src: Path,
    out: Path,
    start: float | None = None,
    end: float | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    out.mkdir(parents=True, exist_ok=True)
    request = {"plan": plan(check_preset(preset, "preset")), "input": str(src), "outputDir": str(out),
               "basename": src.stem, "start": start, "end": end}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "keyless.providers.media.encoding.run"],
        input=json.dumps(request), capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, lines


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        info: dict[str, Any] = {"duration": (c.duration or 0) / 1e6}
        for s in c.streams:
            cc: Any = s.codec_context
            info[s.type] = {"codec": cc.name, "frames": sum(1 for _ in c.decode(s))}
            c.seek(0)
            if s.type == "video":
                info[s.type]["size"] = (cc.width, cc.height)
            else:
                info[s.type]["rate"] = cc.sample_rate
        return info


def files_of(lines: list[dict[str, Any]]) -> list[str]:
    assert "files" in lines[-1], lines
    return list(lines[-1]["files"])


def test_builtin_720p_writes_mp4_and_ism(clips: dict[str, Path], tmp_path: Path) -> None:
    rc, lines = encode({"@odata.type": B, "presetName": "H264SingleBitrate720p"}, clips["av"], tmp_path,
                       env={"KEYLESS_MEDIA_ENCODER_THREADS": "1"})  # fmt: skip
    assert rc == 0
    progress = [x["progress"] for x in lines if "progress" in x]
    assert progress and progress == sorted(progress) and progress[-1] == 100
    assert all(isinstance(p, int) and 0 <= p <= 100 for p in progress)
    files = files_of(lines)
    assert sorted(os.listdir(tmp_path)) == sorted(files)
    mp4 = [f for f in files if f.endswith(".mp4")]
    assert len(mp4) == 1 and re.fullmatch(r"clip_960x720_AACAudio_\d+\.mp4", mp4[0])
    info = probe(tmp_path / mp4[0])
    assert info["video"] == {"codec": "h264", "frames": 60, "size": (960, 720)}
    assert info["audio"]["codec"] == "aac" and info["audio"]["rate"] == 48000
    assert abs(info["duration"] - 2.0) < 0.1
    # {Bitrate} in a BuiltIn's name is the file's measured kbps.
    kbps = int(mp4[0].rsplit("_", 1)[1][:-4])
    assert abs(kbps - (tmp_path / mp4[0]).stat().st_size * 8 / 2.0 / 1000) < kbps * 0.05
    root = ET.parse(tmp_path / "clip.ism").getroot()
    assert root is not None
    ns = {"s": "http://www.w3.org/2001/SMIL20/Language"}
    assert [v.get("src") for v in root.iterfind(".//s:video", ns)] == mp4
    assert [a.get("src") for a in root.iterfind(".//s:audio", ns)] == mp4


def test_adaptive_streaming_never_exceeds_the_input(clips: dict[str, Path], tmp_path: Path) -> None:
    rc, lines = encode({"@odata.type": B, "presetName": "AdaptiveStreaming"}, clips["av"], tmp_path)
    assert rc == 0
    mp4 = [f for f in files_of(lines) if f.endswith(".mp4")]
    assert mp4 and len(set(mp4)) == len(mp4)
    for name in mp4:
        w, h = probe(tmp_path / name)["video"]["size"]
        assert h <= 240 and w <= 320 and abs(w / h - 4 / 3) < 0.05


def test_clip_range_is_honoured(clips: dict[str, Path], tmp_path: Path) -> None:
    rc, lines = encode(
        {"@odata.type": B, "presetName": "H264SingleBitrateSD"}, clips["av"], tmp_path, 0.5, 1.5
    )
    assert rc == 0
    (mp4,) = [f for f in files_of(lines) if f.endswith(".mp4")]
    info = probe(tmp_path / mp4)
    assert info["video"]["size"] == (640, 480) and 29 <= info["video"]["frames"] <= 31
    assert abs(info["duration"] - 1.0) < 0.1


def test_custom_preset_layers_and_thumbnails(clips: dict[str, Path], tmp_path: Path) -> None:
    preset = {
        "@odata.type": S,
        "codecs": [
            {"@odata.type": "#Microsoft.Media.AacAudio", "channels": 1, "samplingRate": 44100, "bitrate": 96000},
            {"@odata.type": "#Microsoft.Media.H264Video", "complexity": "Speed", "layers": [
                {"width": "640", "height": "480", "label": "HD", "bitrate": 1000000},
                {"width": "50%", "height": "50%", "label": "SD", "bitrate": 300000, "frameRate": "15"}]},
            {"@odata.type": "#Microsoft.Media.PngImage", "start": "25%", "step": "25%", "range": "80%",
             "layers": [{"width": "50%", "height": "50%"}]},
            {"@odata.type": "#Microsoft.Media.JpgImage", "start": "PT0S", "step": "PT0.5S",
             "layers": [{"width": "96", "height": "72", "label": "tiny", "quality": 90}]},
        ],
        "formats": [
            {"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "Video-{Basename}-{Label}-{Bitrate}{Extension}"},
            {"@odata.type": "#Microsoft.Media.PngFormat", "filenamePattern": "Thumbnail-{Basename}-{Index}{Extension}"},
            {"@odata.type": "#Microsoft.Media.JpgFormat", "filenamePattern": "{Basename}_{Label}_{Index}{Extension}"},
        ],
    }  # fmt: skip
    rc, lines = encode(preset, clips["av"], tmp_path)
    assert rc == 0
    files = set(files_of(lines))
    assert {"Video-clip-HD-1000.mp4", "Video-clip-SD-300.mp4", "clip.ism"} <= files
    hd, sd = probe(tmp_path / "Video-clip-HD-1000.mp4"), probe(tmp_path / "Video-clip-SD-300.mp4")
    assert hd["video"]["size"] == (640, 480) and hd["audio"]["rate"] == 44100
    assert sd["video"]["size"] == (160, 120) and 29 <= sd["video"]["frames"] <= 31  # 15 fps for 2 s
    pngs = sorted(f for f in files if f.endswith(".png"))
    assert pngs == [f"Thumbnail-clip-00000{i}.png" for i in (1, 2, 3)]  # 25%, 50%, 75% (< 80%)
    jpgs = sorted(f for f in files if f.endswith(".jpg"))
    assert jpgs == [f"clip_tiny_00000{i}.jpg" for i in (1, 2, 3, 4)]  # 0, 0.5, 1, 1.5 s
    for name, size in [(pngs[0], (160, 120)), (jpgs[0], (96, 72))]:
        with av.open(str(tmp_path / name)) as c:
            frame = next(c.decode(video=0))
            assert (frame.width, frame.height) == size


def test_filters_output_files_and_transport_stream(clips: dict[str, Path], tmp_path: Path) -> None:
    preset = {
        "@odata.type": S,
        "filters": {"crop": {"left": "0", "top": "0", "width": "50%", "height": "200"}, "rotation": "Rotate90"},
        "codecs": [
            {"@odata.type": "#Microsoft.Media.AacAudio", "label": "a1"},
            {"@odata.type": "#Microsoft.Media.H264Video", "stretchMode": "AutoFit", "layers": [
                {"width": "320", "height": "320", "label": "v1", "bitrate": 400000, "profile": "Baseline"}]},
        ],
        "formats": [
            {"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "{Basename}_{Label}{Extension}",
             "outputFiles": [{"labels": ["v1"]}, {"labels": ["a1"]}]},
            {"@odata.type": "#Microsoft.Media.TransportStreamFormat", "filenamePattern": "{Basename}_{Resolution}{Extension}"},
        ],
    }  # fmt: skip
    rc, lines = encode(preset, clips["av"], tmp_path)
    assert rc == 0
    assert set(files_of(lines)) == {"clip_v1.mp4", "clip_a1.mp4", "clip_320x320.ts", "clip.ism"}
    v1, a1, ts = (probe(tmp_path / n) for n in ("clip_v1.mp4", "clip_a1.mp4", "clip_320x320.ts"))
    assert v1["video"]["size"] == (320, 320) and "audio" not in v1  # padded 200x160 -> 320x256 in 320x320
    assert "video" not in a1 and a1["audio"]["codec"] == "aac"
    assert ts["video"]["size"] == (320, 320) and ts["audio"]["codec"] == "aac"


def test_audio_preset_on_audio_only_input(clips: dict[str, Path], tmp_path: Path) -> None:
    rc, lines = encode({"@odata.type": B, "presetName": "AACGoodQualityAudio"}, clips["audio"], tmp_path)
    assert rc == 0
    (mp4,) = [f for f in files_of(lines) if f.endswith(".mp4")]
    assert re.fullmatch(r"song_AACAudio_\d+\.mp4", mp4)
    info = probe(tmp_path / mp4)
    assert "video" not in info and info["audio"]["codec"] == "aac" and abs(info["duration"] - 2.0) < 0.1


def test_video_only_input_gives_video_only_output(clips: dict[str, Path], tmp_path: Path) -> None:
    rc, lines = encode({"@odata.type": B, "presetName": "H265SingleBitrate720p"}, clips["video"], tmp_path)
    assert rc == 0
    (mp4,) = [f for f in files_of(lines) if f.endswith(".mp4")]
    info = probe(tmp_path / mp4)
    assert info["video"]["codec"] == "hevc" and info["video"]["size"] == (960, 720) and "audio" not in info


@pytest.mark.parametrize(
    ("clip", "preset", "start", "code"),
    [
        ("audio", {"@odata.type": B, "presetName": "AdaptiveStreaming"}, None, "ContentUnsupported"),
        ("video", {"@odata.type": B, "presetName": "AACGoodQualityAudio"}, None, "ContentUnsupported"),
        ("junk", {"@odata.type": B, "presetName": "AdaptiveStreaming"}, None, "ContentMalformed"),
        ("empty", {"@odata.type": B, "presetName": "AdaptiveStreaming"}, None, "ContentMalformed"),
        ("av", {"@odata.type": B, "presetName": "H264SingleBitrateSD"}, 30.0, "ConfigurationUnsupported"),
    ],
)
def test_job_errors(
    clips: dict[str, Path], tmp_path: Path, clip: str, preset: dict[str, Any], start: float | None, code: str
) -> None:
    rc, lines = encode(preset, clips[clip], tmp_path, start)
    assert rc == 3
    assert lines[-1]["error"]["code"] == code and lines[-1]["error"]["message"]
    assert os.listdir(tmp_path) == []  # no partial files left behind


def test_bad_request_is_a_service_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "keyless.providers.media.encoding.run"],
        input='{"plan": {}, "input": "relative.mp4"}', capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3
    assert json.loads(proc.stdout.splitlines()[-1])["error"]["code"] == "ServiceError"


def test_rungs_that_measure_the_same_bitrate_keep_distinct_names(tmp_path: Path) -> None:
    """examples/make_clip.py's flat 640x360 picture: AdaptiveStreaming's two 360p rungs measure
    the same kbps; both files are written, under different names, and every MP4 is fast-start."""
    clip = tmp_path / "keyless-clip.mp4"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(root / "examples" / "make_clip.py"), str(clip), "3"], check=True)
    rc, lines = encode({"@odata.type": B, "presetName": "AdaptiveStreaming"}, clip, tmp_path / "out")
    assert rc == 0, lines
    mp4 = [f for f in files_of(lines) if f.endswith(".mp4")]
    assert len(mp4) >= 3 and len(set(mp4)) == len(mp4), mp4
    for name in mp4:
        head = (tmp_path / "out" / name).read_bytes()
        assert 0 <= head.find(b"moov") < head.find(b"mdat"), name  # moov first: playable while downloading
