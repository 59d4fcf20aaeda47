"""Test media, synthesized with PyAV (nothing is downloaded): short MP4 clips with a moving
picture and a tone, and what a decoded file holds."""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av


def _plane_bytes(line_size: int, width: int, height: int, value_at: object) -> bytes:
    rows = []
    for y in range(height):
        row = bytes(value_at(x, y) for x in range(width))  # type: ignore[operator]
        rows.append(row + bytes(line_size - width))
    return b"".join(rows)


def make_clip(
    seconds: float = 2.0, width: int = 320, height: int = 240, fps: int = 24, audio: bool = True
) -> bytes:
    """An MP4 (H.264 + AAC) of ``seconds``: a gradient that moves, and a 440 Hz tone."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=48000) if audio else None
        frames = int(seconds * fps)
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            luma, cb, cr = frame.planes
            luma.update(_plane_bytes(luma.line_size, width, height, lambda x, y, i=i: (x + y + i * 4) % 256))
            chroma = (i * 5) % 256
            cb.update(bytes([chroma]) * (cb.line_size * (height // 2)))
            cr.update(bytes([255 - chroma]) * (cr.line_size * (height // 2)))
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            rate, chunk = 48000, 1024
            total = int(seconds * rate)
            for start in range(0, total, chunk):
                n = min(chunk, total - start)
                pcm = b"".join(
                    struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * (start + k) / rate)))
                    for k in range(n)
                )
                chunk_frame = av.AudioFrame(format="s16", layout="mono", samples=n)
                chunk_frame.planes[0].update(pcm)
                chunk_frame.sample_rate = rate
                chunk_frame.pts = start
                chunk_frame.time_base = Fraction(1, rate)
                for packet in sound.encode(chunk_frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return out.getvalue()


@dataclass(frozen=True)
class Probe:
    video: tuple[int, int] | None  # width, height
    audio: bool
    seconds: float
    frames: int


def probe(data: bytes | Path) -> Probe:
    """What a media file holds, by decoding every video frame."""
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(source, "r") as container:
        has_audio = any(s.type == "audio" for s in container.streams)
        streams = container.streams.video
        if not streams:
            duration = (container.duration or 0) / 1_000_000
            return Probe(None, has_audio, duration, 0)
        stream = streams[0]
        frames, last = 0, 0.0
        for frame in container.decode(stream):
            frames += 1
            if frame.time is not None:
                last = max(last, frame.time)
        rate = float(stream.average_rate or 24)
        return Probe(
            (stream.codec_context.width, stream.codec_context.height), has_audio, last + 1 / rate, frames
        )
