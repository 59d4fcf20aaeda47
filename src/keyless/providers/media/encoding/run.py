"""The encoder program: ``python -m keyless.providers.media.encoding.run``.

Reads ONE JSON object on stdin (at most 1 MiB)::

    {"plan": <presets.plan()>, "input": "/abs/in.mp4", "outputDir": "/abs/dir", "basename": "clip",
     "start": <seconds|null>, "end": <seconds|null>}

writes the output files flat into outputDir and prints JSON lines on stdout: ``{"progress": n}``
(0..100, at most 4 a second), then ``{"files": [...]}`` and exit 0, or ``{"error": {"code", "message"}}``
and exit 3 with a JobErrorCode (ContentMalformed: the input is not decodable media; ContentUnsupported:
it lacks the video a video preset needs; ConfigurationUnsupported: the plan cannot be done on it
(empty clip range, encoder refused a setting); ServiceError: anything else).

Decoding and encoding go frame by frame (memory flat in clip length); every encoder/decoder uses
``KEYLESS_MEDIA_ENCODER_THREADS`` threads (0 = FFmpeg's choice). Scaling, cropping, rotation,
deinterlacing, padding (AutoFit) and frame-rate conversion are FFmpeg filter graphs. File names follow
the format's filenamePattern macros (Encoding.json Format.filenamePattern; {Basename} is cut to 32
characters, 64 with a copy codec; {Index} is 6 digits from 000001; unsubstituted macros are removed).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import resource
import signal
import sys
import time
from fractions import Fraction
from typing import Any

import av

from keyless.providers.media.encoding.manifest import Track, server_manifest
from keyless.providers.media.encoding.thumbs import (
    NameClash,
    Thumbnailer,
    dim,
    expand_pattern,
    filtered_size,
    layer_size,
    make_graph,
    pre_filters,
    pull,
)

MAX_REQUEST = 1 << 20
EXTENSIONS = {"mp4": ".mp4", "ts": ".ts", "jpg": ".jpg", "png": ".png"}
CODEC_NAMES = {"h264": "H264", "h265": "H265", "copy": "Copy", "aac": "AACAudio", "ac3": "DDAudio"}
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
AUDIO_FRAME = {"aac": 1024, "ac3": 1536}


class EncodeError(Exception):
    """A job error: ``code`` is a JobErrorCode (Encoding.json JobError.code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def threads() -> int:
    try:
        return max(0, min(64, int(os.environ.get("KEYLESS_MEDIA_ENCODER_THREADS", "0"))))
    except ValueError:
        return 0


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# Tracks: one encoder (or copier) feeding one stream of one output container.


class VideoTrack:
    def __init__(
        self, out: Any, src: Any, ctx: Context, codec: dict[str, Any], layer: dict[str, Any]
    ) -> None:
        self.layer, self.codec = layer, codec
        self.width, self.height, pw, ph = layer_size(layer, ctx.size, codec["stretchMode"])
        rate = Fraction(*layer["frameRate"]) if layer.get("frameRate") else ctx.fps
        profile = (layer.get("profile") or "Auto").lower()
        pix = {"high422": "yuv422p", "high444": "yuv444p", "main10": "yuv420p10le"}.get(profile, "yuv420p")
        chain = [*ctx.pre, ("scale", f"{pw}:{ph}:flags=bicubic"), ("setsar", "1")]
        if (pw, ph) != (self.width, self.height):
            chain.append(("pad", f"{self.width}:{self.height}:(ow-iw)/2:(oh-ih)/2:black"))
        if layer.get("frameRate") or codec.get("syncMode") == "Cfr":
            chain.append(("fps", f"{rate.numerator}/{rate.denominator}"))
        chain.append(("format", pix))
        self.graph, self.sink = make_graph(src, chain)
        # The sink's time base is known once frames come out (yadif halves it, fps sets 1/rate).
        self.time_base: Fraction | None = None
        self.t0 = ctx.t0
        self.offset = 0
        h264 = codec["codec"] == "h264"
        self.stream = out.add_stream("libx264" if h264 else "libx265", rate=rate)
        cc = self.stream.codec_context
        cc.width, cc.height, cc.pix_fmt = self.width, self.height, pix
        cc.thread_count = ctx.threads
        gop = max(1, round(codec["keyFrameInterval"] * float(rate)))
        bitrate, maxrate = layer["bitrate"], layer["maxBitrate"]
        opts = {"preset": codec["encoderPreset"], "g": str(gop), "bf": str(layer["bFrames"])}
        opts["bufsize"] = str(int(maxrate * layer["bufferWindow"]))
        if codec["rateControl"] == "CRF":
            opts["crf"] = str(layer["crf"])
            opts["maxrate"] = str(maxrate)
        else:
            cc.bit_rate = bitrate
            opts["maxrate"] = str(bitrate if codec["rateControl"] == "CBR" else maxrate)
        scenecut = "40" if codec["sceneChangeDetection"] else "0"
        if h264:
            params = [
                f"keyint={gop}",
                f"min-keyint={gop}",
                f"scenecut={scenecut}",
                f"ref={layer['referenceFrames']}",
            ]
            if layer.get("entropyMode") == "Cavlc":
                params.append("cabac=0")
            if codec["rateControl"] == "CBR":
                params.append("nal-hrd=cbr")
            if layer.get("slices"):
                params.append(f"slices={layer['slices']}")
            opts["x264-params"] = ":".join(params)
            if profile != "auto":
                opts["profile"] = profile
        else:
            opts["x265-params"] = f"keyint={gop}:min-keyint={gop}:scenecut={scenecut}:log-level=error"
            if profile != "auto":
                opts["profile"] = "main10" if profile == "main10" else "main"
            if "mp4" in out.format.name:
                self.stream.codec_tag = "hvc1"  # what Apple players need in MP4
        level = str(layer.get("level") or "auto")
        if level.lower() != "auto":
            opts["level"] = level
        self.stream.options = opts
        self.out = out
        self.bitrate = bitrate

    def push(self, frame: Any) -> None:
        self.graph.push(frame)
        self._drain()

    def _drain(self) -> None:
        for f in pull(self.sink):
            if self.time_base is None:  # the encoder opens on the first frame: set it up now
                self.time_base = f.time_base or Fraction(1, 90000)
                self.stream.codec_context.time_base = self.time_base
                self.offset = round(self.t0 / self.time_base)
            f.pts = f.pts - self.offset if f.pts is not None else None
            if f.pts is not None and f.pts < 0:
                continue
            f.time_base = self.time_base
            f.pict_type = av.video.frame.PictureType.NONE  # no decoder-forced frame types
            for p in self.stream.encode(f):
                self.out.mux(p)

    def flush(self) -> None:
        self.graph.push(None)
        self._drain()
        for p in self.stream.encode(None):
            self.out.mux(p)


class AudioTrack:
    def __init__(self, out: Any, ctx: Context, codec: dict[str, Any]) -> None:
        self.codec, self.out = codec, out
        layout = LAYOUTS.get(codec["channels"], "stereo")
        self.stream = out.add_stream(codec["codec"], rate=codec["samplingRate"])
        cc = self.stream.codec_context
        cc.layout, cc.bit_rate, cc.format, cc.thread_count = layout, codec["bitrate"], "fltp", ctx.threads
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=codec["samplingRate"])
        self.fifo = av.AudioFifo()
        self.size = AUDIO_FRAME[codec["codec"]]
        self.samples: int | None = None
        self.t0 = ctx.t0
        self.bitrate = codec["bitrate"]

    def push(self, frame: Any) -> None:
        if self.samples is None:  # the first sample's place on the output timeline
            start = (frame.time or self.t0) - self.t0 if frame is not None else 0
            self.samples = max(0, round(start * self.codec["samplingRate"]))
        for rf in self.resampler.resample(frame):
            rf.pts = None
            self.fifo.write(rf)
        self._drain(self.size)

    def _drain(self, size: int) -> None:
        while self.fifo.samples >= size and self.fifo.samples > 0:
            f = self.fifo.read(size)
            if f is None:
                break
            f.pts, f.time_base = self.samples, Fraction(1, self.codec["samplingRate"])
            self.samples = (self.samples or 0) + f.samples
            for p in self.stream.encode(f):
                self.out.mux(p)

    def flush(self) -> None:
        self.push(None)
        self._drain(min(self.size, self.fifo.samples))
        for p in self.stream.encode(None):
            self.out.mux(p)


class CopyTrack:
    """A copied (not re-encoded) stream: packets from the clip range, rebased to start at 0."""

    def __init__(self, out: Any, src: Any) -> None:
        self.out, self.src = out, src
        self.stream = out.add_stream_from_template(src)
        self.base: int | None = None
        self.bitrate = src.bit_rate or 0

    def packet(self, pkt: Any) -> None:
        if self.base is None:
            self.base = pkt.dts if pkt.dts is not None else pkt.pts or 0
        copy = av.Packet(bytes(pkt))
        copy.pts = None if pkt.pts is None else pkt.pts - self.base
        copy.dts = None if pkt.dts is None else pkt.dts - self.base
        copy.is_keyframe = pkt.is_keyframe
        copy.time_base = self.src.time_base
        copy.stream = self.stream
        self.out.mux(copy)


class Context:
    """What every track needs to know about the input and the job."""

    def __init__(self, req: dict[str, Any], container: Any) -> None:
        self.plan: dict[str, Any] = req["plan"]
        self.container = container
        self.video = container.streams.video[0] if container.streams.video else None
        self.audio = container.streams.audio[0] if container.streams.audio else None
        self.threads = threads()
        start_time = (container.start_time or 0) / av.time_base
        self.start: float | None = req.get("start")
        self.end: float | None = req.get("end")
        self.t0 = start_time + (self.start or 0.0)
        total = (container.duration or 0) / av.time_base
        stop = min(self.end, total) if self.end is not None and total else (self.end or total)
        self.duration = max(0.0, stop - (self.start or 0.0))
        self.fps = Fraction(30)
        self.size = (0, 0)
        self.pre: list[tuple[str, str]] = []
        if self.video is not None:
            rate = self.video.average_rate or self.video.guessed_rate
            if rate and 1 <= rate <= 240:
                self.fps = Fraction(rate).limit_denominator(1001)
            cc = self.video.codec_context
            rotate = 0
            matrix = getattr(self.video, "side_data", None)
            if matrix is not None:
                try:
                    rotate = round(-float(matrix.get("DISPLAYMATRIX", 0))) % 360
                except (TypeError, ValueError, AttributeError):
                    rotate = 0
            src = (cc.width, cc.height)
            self.pre = pre_filters(self.plan.get("filters") or {}, src, rotate)
            self.size = filtered_size(self.pre, src)
        long_base = any(c["codec"] == "copy" for c in self.plan["video"] + self.plan["audio"])
        base = re.sub(r"[/\\\x00-\x1f]", "_", str(req.get("basename") or "output"))
        self.basename = base[: 64 if long_base else 32]


# ---------------------------------------------------------------------------------------------
# Output files


class Output:
    """One MP4/TS file: its container (written under a temporary name) and its tracks."""

    def __init__(self, ctx: Context, out_dir: str, n: int, kind: str, pattern: str, items: list[Any]) -> None:
        self.kind, self.pattern, self.items = kind, pattern, items
        self.tmp = os.path.join(out_dir, f".keyless-partial-{n}{EXTENSIONS[kind]}")
        # MP4s are fast-start (moov first): a player can start a progressive download at once.
        options = {"movflags": "faststart"} if kind == "mp4" else {}
        self.container = av.open(self.tmp, "w", format="mp4" if kind == "mp4" else "mpegts", options=options)
        self.tracks: list[Any] = []
        for item in items:  # video first: its MP4 track ID is 1, the audio's 2 (as in Azure's .ism)
            codec, layer = item
            if codec["codec"] == "copy":
                self.tracks.append(CopyTrack(self.container, ctx.video if layer == "video" else ctx.audio))
            elif layer is None:
                self.tracks.append(AudioTrack(self.container, ctx, codec))
            else:
                self.tracks.append(VideoTrack(self.container, ctx.video, ctx, codec, layer))

    def values(self, basename: str, measured_kbps: int | None) -> dict[str, str | None]:
        video = next((t for t in self.tracks if isinstance(t, VideoTrack)), None)
        audio = [t for t in self.tracks if isinstance(t, AudioTrack)]
        first = self.items[0]
        label = first[1].get("label") if isinstance(first[1], dict) else None
        label = label or first[0].get("label")
        kbps = measured_kbps or round((video or (audio[0] if audio else self.tracks[0])).bitrate / 1000)
        return {
            "Basename": basename,
            "Extension": EXTENSIONS[self.kind],
            "Label": label,
            "Bitrate": str(kbps) if kbps else None,
            "Codec": CODEC_NAMES.get(first[0]["codec"]),
            "Resolution": f"{video.width}x{video.height}" if video else None,
            "AudioStream": "Audio1" if audio else None,
        }


def video_items(ctx: Context) -> list[tuple[dict[str, Any], Any]]:
    """(codec, layer) per video rendition; ladders that cap to the input lose taller rungs."""
    items: list[tuple[dict[str, Any], Any]] = []
    for codec in ctx.plan["video"]:
        if codec["codec"] == "copy":
            items.append((codec, "video"))
            continue
        layers = codec["layers"]
        if codec.get("capToInput"):
            fits = [
                la
                for la in layers
                if la["height"] is None or (dim(la["height"], ctx.size[1]) or 0) <= ctx.size[1]
            ]
            layers = fits or [{**layers[-1], "height": {"px": ctx.size[1]}}]
        items += [(codec, layer) for layer in layers]
    return items


def build_outputs(ctx: Context, out_dir: str) -> list[Output]:
    videos = video_items(ctx) if ctx.plan["video"] else []
    if (videos or ctx.plan["images"]) and ctx.video is None:
        raise EncodeError("ContentUnsupported", "The input has no video track, which the preset requires.")
    audios: list[tuple[dict[str, Any], Any]] = []
    if ctx.audio is not None:
        audios = [(c, "audio" if c["codec"] == "copy" else None) for c in ctx.plan["audio"]]
    elif ctx.plan["audio"] and not videos and not ctx.plan["images"]:
        raise EncodeError("ContentUnsupported", "The input has no audio track, which the preset requires.")
    outputs: list[Output] = []
    for fmt in ctx.plan["formats"]:
        if fmt["kind"] not in ("mp4", "ts"):
            continue
        groups: list[list[Any]] = []
        if fmt["outputFiles"]:
            for labels in fmt["outputFiles"]:
                wanted = set(labels)
                group = [
                    v
                    for v in videos
                    if (isinstance(v[1], dict) and v[1].get("label") in wanted) or v[0].get("label") in wanted
                ]
                groups.append(group + [a for a in audios if a[0].get("label") in wanted])
        elif ctx.plan["interleave"]:
            groups = [[v, *audios] for v in videos] or [audios]
        else:
            groups = [[v] for v in videos] + [[a] for a in audios]
        for group in groups:
            if group:
                outputs.append(Output(ctx, out_dir, len(outputs), fmt["kind"], fmt["pattern"], group))
    return outputs


# ---------------------------------------------------------------------------------------------
# The run


def encode(req: dict[str, Any]) -> list[str]:
    out_dir = req["outputDir"]
    try:
        container = av.open(req["input"], "r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise EncodeError(
            "ContentMalformed", f"The input file could not be read as media: {reason(exc)}"
        ) from exc
    with container:
        if not container.streams.video and not container.streams.audio:
            raise EncodeError("ContentMalformed", "The input file has no audio or video track.")
        ctx = Context(req, container)
        for s in (ctx.video, ctx.audio):
            if s is not None:
                s.codec_context.thread_count = ctx.threads
        outputs = build_outputs(ctx, out_dir)
        thumbs = Thumbnailer(ctx, {f["kind"]: f["pattern"] for f in ctx.plan["formats"]}, out_dir)
        try:
            last = _run(ctx, outputs, thumbs)
            for output in outputs:
                for track in output.tracks:
                    if not isinstance(track, CopyTrack):
                        track.flush()
                output.container.close()
        except av.error.FFmpegError as exc:
            for output in outputs:
                _discard(output)
            raise EncodeError("ConfigurationUnsupported", f"The encoder failed: {reason(exc)}") from exc
        if last is None:
            for output in outputs:
                _discard(output)
            raise EncodeError("ConfigurationUnsupported", "The clip range selects no media of the input.")
        return finish(ctx, outputs, thumbs, out_dir, last)


def _discard(output: Output) -> None:
    with contextlib.suppress(Exception):  # already failing; the partial file goes either way
        output.container.close()
    if os.path.exists(output.tmp):
        os.remove(output.tmp)


def _run(ctx: Context, outputs: list[Output], thumbs: Thumbnailer) -> float | None:
    """Demux and decode the clip once, feeding every track; returns the last clip time seen."""
    video_tracks = [t for o in outputs for t in o.tracks if isinstance(t, VideoTrack)]
    audio_tracks = [t for o in outputs for t in o.tracks if isinstance(t, AudioTrack)]
    copies = [t for o in outputs for t in o.tracks if isinstance(t, CopyTrack)]
    decode_video = bool(video_tracks) or thumbs.wants_frames
    copied = {id(c.src) for c in copies}
    wanted = [(ctx.video, decode_video), (ctx.audio, bool(audio_tracks))]
    streams = [s for s, used in wanted if s is not None and (used or id(s) in copied)]
    if not streams:
        return None
    if ctx.start:
        ctx.container.seek(int(ctx.t0 * av.time_base), backward=True, any_frame=False)
    end_abs = ctx.t0 + ctx.duration if ctx.end is not None else math.inf
    last: float | None = None
    shown, shown_at = -1, 0.0
    done: set[int] = set()
    keyed: set[int] = set()
    for pkt in ctx.container.demux(streams):
        stream = pkt.stream
        pkt_time = float(pkt.pts * pkt.time_base) if pkt.pts is not None and pkt.time_base else None
        if pkt_time is not None and pkt.size:
            for copy in (c for c in copies if c.src is stream):
                if ctx.t0 - 1e-6 <= pkt_time < end_abs and (pkt.is_keyframe or id(copy) in keyed):
                    keyed.add(id(copy))
                    copy.packet(pkt)
            if copies and pkt_time >= ctx.t0:
                last = max(last or 0.0, pkt_time - ctx.t0)
        is_video = stream is ctx.video
        if (is_video and not decode_video) or (not is_video and not audio_tracks) or stream.index in done:
            if pkt_time is not None and pkt_time >= end_abs:
                done.add(stream.index)
            if len(done) == len(streams):
                break
            continue
        try:
            frames = pkt.decode()
        except av.error.InvalidDataError as exc:
            raise EncodeError("ContentMalformed", f"The input could not be decoded: {reason(exc)}") from exc
        for frame in frames:
            t = frame.time
            if t is None or t < ctx.t0 - 1e-6:
                continue
            if t >= end_abs:
                done.add(stream.index)
                break
            clip_t = t - ctx.t0
            last = max(last or 0.0, clip_t)
            if is_video:
                if thumbs.wants_frames:
                    thumbs.frame(frame, clip_t)
                for vt in video_tracks:
                    vt.push(frame)
            else:
                for at in audio_tracks:
                    at.push(frame)
            pct = min(99, int(100 * clip_t / ctx.duration)) if ctx.duration else 0
            if pct > shown and time.monotonic() - shown_at >= 0.25:
                shown, shown_at = pct, time.monotonic()
                emit({"progress": pct})
        if len(done) == len(streams):
            break
    return last


def finish(ctx: Context, outputs: list[Output], thumbs: Thumbnailer, out_dir: str, last: float) -> list[str]:
    """Name the files (measured {Bitrate} for BuiltIns) and write the .ism next to MP4s."""
    duration = ctx.duration or last
    names: list[str] = []
    manifest: list[Track] = []
    for output in outputs:
        measured = None
        if ctx.plan.get("measuredBitrate") and duration > 0:
            measured = max(1, round(os.path.getsize(output.tmp) * 8 / duration / 1000))
        name = expand_pattern(output.pattern, output.values(ctx.basename, measured))
        while measured is not None and (name in names or name in thumbs.files):
            # Two rungs that measured the same bitrate (easy content): the later one's {Bitrate}
            # goes up by a kilobit, so both keep Azure's name pattern.
            measured += 1
            name = expand_pattern(output.pattern, output.values(ctx.basename, measured))
        if name in names or name in thumbs.files:
            raise EncodeError("ConfigurationUnsupported", f"Two output files would be named {name}.")
        os.replace(output.tmp, os.path.join(out_dir, name))
        names.append(name)
        if output.kind == "mp4":
            total = round(os.path.getsize(os.path.join(out_dir, name)) * 8 / duration) if duration else 0
            for track_id, track in enumerate(output.tracks, start=1):
                kind = (
                    "video"
                    if isinstance(track, VideoTrack)
                    or (isinstance(track, CopyTrack) and track.src.type == "video")
                    else "audio"
                )
                rate = int(track.bitrate or 0) if kind == "audio" else total
                channels = getattr(track, "codec", {}).get("channels", 2)
                lang = (ctx.audio.language if ctx.audio is not None else None) or "und"
                manifest.append(Track(kind, name, rate, track_id, lang, channels, total))
    files = names + thumbs.files
    if manifest:
        ism = f"{ctx.basename}.ism"
        with open(os.path.join(out_dir, ism), "w", encoding="utf-8") as fh:
            fh.write(server_manifest(manifest))
        files.append(ism)
    return files


def reason(exc: BaseException) -> str:
    """What an error says without the file names in it (they are the server's work paths, which a
    job's error must not show): an OS or FFmpeg error's own text, else the exception's kind."""
    text = getattr(exc, "strerror", None)
    return str(text) if isinstance(text, str) and text else type(exc).__name__


def read_request(raw: str) -> dict[str, Any]:
    req = json.loads(raw)
    if not isinstance(req, dict) or not isinstance(req.get("plan"), dict):
        raise ValueError("the request must be an object with a plan")
    for key in ("input", "outputDir"):
        if not isinstance(req.get(key), str) or not os.path.isabs(req[key]) or len(req[key]) > 4096:
            raise ValueError(f"{key} must be an absolute path")
    for key in ("start", "end"):
        v = req.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e7):
            raise ValueError(f"{key} must be seconds or null")
    if req.get("start") is not None and req.get("end") is not None and req["end"] <= req["start"]:
        raise ValueError("end must be after start")
    return req


def confine(limits: Any) -> None:
    """Bound this process before it opens the input: address space and the size of any file it
    writes (``limits``: ``{"memoryBytes", "fileBytes"}``, from the server), no core dumps. A write
    past the file limit fails (EFBIG) instead of killing the process, so the job gets its error."""
    if not isinstance(limits, dict):
        return
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in (("memoryBytes", resource.RLIMIT_AS), ("fileBytes", resource.RLIMIT_FSIZE)):
        value = limits.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            resource.setrlimit(which, (value, value))


def main() -> int:
    try:
        req = read_request(sys.stdin.read(MAX_REQUEST + 1)[:MAX_REQUEST])
        confine(req.get("limits"))
    except (ValueError, TypeError, OSError) as exc:
        emit(
            {
                "error": {
                    "code": "ServiceError",
                    "message": f"Bad encoder request: {reason(exc) if isinstance(exc, OSError) else exc}",
                }
            }
        )
        return 3
    try:
        if os.path.getsize(req["input"]) == 0:
            raise EncodeError("ContentMalformed", "The input file is empty.")
        emit({"progress": 0})
        files = encode(req)
    except EncodeError as exc:
        emit({"error": {"code": exc.code, "message": exc.message}})
        return 3
    except NameClash as exc:
        emit({"error": {"code": "ConfigurationUnsupported", "message": str(exc)}})
        return 3
    except Exception as exc:  # the job must end with an error line, never a traceback
        emit({"error": {"code": "ServiceError", "message": f"The encoder failed: {reason(exc)}"}})
        return 3
    emit({"progress": 100})
    emit({"files": files})
    return 0


if __name__ == "__main__":
    sys.exit(main())
