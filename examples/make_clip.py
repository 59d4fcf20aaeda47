"""Write a short test clip (H.264 + AAC in MP4) with PyAV, so the Media Services examples have
something to encode without downloading anything:

    python examples/make_clip.py clip.mp4 [seconds]
"""

import math
import sys
from fractions import Fraction

import av

path = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
width, height, fps, rate = 640, 360, 25, 48000

with av.open(path, "w") as container:
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = container.add_stream("aac", rate=rate)
    for i in range(int(seconds * fps)):
        frame = av.VideoFrame(width, height, "yuv420p")
        luma, cb, cr = frame.planes
        row = bytes((x + i * 3) % 256 for x in range(luma.line_size))
        luma.update(row * height)
        cb.update(bytes([(i * 2) % 256]) * (cb.line_size * height // 2))
        cr.update(bytes([128]) * (cr.line_size * height // 2))
        frame.pts, frame.time_base = i, Fraction(1, fps)
        container.mux(video.encode(frame))
    container.mux(video.encode())
    for start in range(0, int(seconds * rate), 1024):
        tone = [int(5000 * math.sin(2 * math.pi * 440 * (start + k) / rate)) for k in range(1024)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=1024)
        frame.planes[0].update(b"".join(s.to_bytes(2, "little", signed=True) for s in tone))
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(audio.encode(frame))
    container.mux(audio.encode())
print(f"wrote {path}: {seconds:g} s, {width}x{height}")
