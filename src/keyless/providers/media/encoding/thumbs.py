"""Pictures for run.py: layer geometry, FFmpeg filter graphs, thumbnails (JpgImage/PngImage
codecs) and output file names.

Positions (Encoding.json Image.start/step/range): ISO 8601 time, frame count or percentage of the
clip; ``{Best}`` picks one frame early in the clip (Keyless: at min(2 s, half the clip)). Step
defaults to 10%, range (measured from start) to 100%; a range of frame count 1 means one image.
JPEG quality 0..100 (default 70) maps onto FFmpeg mjpeg's qscale 31..2.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av

MAX_THUMBNAILS = 2000  # per image codec: bounds a tiny step on a long clip
# Per output, over every image codec and layer: at most this many pictures and this many pixels in
# all (2,000 full-HD frames), so no preset makes an output cost more than that (Keyless's bound;
# the pictures past it are not written).
MAX_PICTURES = 2000
MAX_NAME = 255  # a file name's length on the file systems the work directory may be on
MAX_PICTURE_PIXELS = 2000 * 1920 * 1080
_MACRO = re.compile(r"\{([A-Za-z]+)\}")


class NameClash(ValueError):
    """The plan cannot be done on this input: two outputs expand to the same file name, or the crop
    lies outside the picture (run.py answers ConfigurationUnsupported)."""


def pull(graph_sink: Any) -> Iterator[Any]:
    """Every frame a filter graph's sink has ready now."""
    while True:
        try:
            yield graph_sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError, BlockingIOError):
            return


def dim(spec: dict[str, float] | None, source: int) -> int | None:
    if spec is None:
        return None
    return int(spec["px"]) if "px" in spec else max(2, round(source * spec["pct"] / 100))


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def layer_size(layer: dict[str, Any], src: tuple[int, int], stretch: str) -> tuple[int, int, int, int]:
    """(frame width, height, picture width, height): the picture is smaller than the frame only
    with AutoFit (padded). AutoSize fits the box keeping the input's aspect ratio (Encoding.json
    StretchMode); a missing dimension follows the aspect ratio; no size at all is the input's."""
    sw, sh = src
    w, h = dim(layer.get("width"), sw), dim(layer.get("height"), sh)
    if w is None and h is None:
        w, h = sw, sh
    elif w is None:
        w = round(sw * h / sh)  # type: ignore[operator]
    elif h is None:
        h = round(sh * w / sw)
    assert w is not None and h is not None
    if stretch == "None":
        return _even(w), _even(h), _even(w), _even(h)
    scale = min(w / sw, h / sh)
    pw, ph = _even(sw * scale), _even(sh * scale)
    if stretch == "AutoFit":
        return _even(w), _even(h), min(pw, _even(w)), min(ph, _even(h))
    return pw, ph, pw, ph


def pre_filters(filters: dict[str, Any], src: tuple[int, int], rotate: int) -> list[tuple[str, str]]:
    """Deinterlace, crop and rotation as (filter, args), applied before scaling."""
    out: list[tuple[str, str]] = []
    if filters.get("deinterlace", {}).get("mode", "AutoPixelAdaptive") != "Off" and "deinterlace" in filters:
        parity = {"TopFieldFirst": "0", "BottomFieldFirst": "1"}.get(filters["deinterlace"]["parity"], "-1")
        out.append(("yadif", f"mode=0:parity={parity}:deint=1"))
    crop = filters.get("crop")
    if crop:
        sw, sh = src

        def px(key: str, full: int, default: int) -> int:
            v = crop.get(key)
            return default if v is None else (int(float(v[:-1]) * full / 100) if v.endswith("%") else int(v))

        x, y = px("left", sw, 0), px("top", sh, 0)
        cw, ch = min(px("width", sw, sw), sw - x), min(px("height", sh, sh), sh - y)
        if cw < 2 or ch < 2:
            raise NameClash("The crop rectangle lies outside the input video.")
        out.append(("crop", f"{cw}:{ch}:{x}:{y}"))
    rotation = {"Rotate90": 90, "Rotate180": 180, "Rotate270": 270}.get(filters.get("rotation", "Auto"), -1)
    if rotation < 0 and filters.get("rotation", "Auto") == "Auto":
        rotation = rotate  # the input's display matrix
    if rotation == 90:
        out.append(("transpose", "clock"))
    elif rotation == 270:
        out.append(("transpose", "cclock"))
    elif rotation == 180:
        out += [("hflip", ""), ("vflip", "")]
    return out


def filtered_size(pre: list[tuple[str, str]], src: tuple[int, int]) -> tuple[int, int]:
    w, h = src
    for name, args in pre:
        if name == "crop":
            w, h = (int(v) for v in args.split(":")[:2])
        elif name == "transpose":
            w, h = h, w
    return w, h


def make_graph(in_stream: Any, chain: list[tuple[str, str]]) -> tuple[Any, Any]:
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=in_stream)]
    nodes += [graph.add(name, args) if args else graph.add(name) for name, args in chain]
    nodes.append(graph.add("buffersink"))
    for a, b in itertools.pairwise(nodes):
        a.link_to(b)
    graph.configure()
    return graph, nodes[-1]


def expand_pattern(pattern: str, values: dict[str, str | None]) -> str:
    """Substitute filenamePattern macros; unsubstituted ones are removed ("collapsed and removed",
    Encoding.json) together with a doubled separator they leave behind."""
    text = _MACRO.sub(lambda m: values.get(m.group(1)) or "\x00", pattern)
    text = re.sub(r"([-_. ])\x00(?=[-_. ]|$)", r"\1", text)
    text = re.sub(r"([-_ ])(?:\x00)+([-_])", r"\2", text).replace("\x00", "")
    text = re.sub(r"([-_]){2,}", r"\1", text)
    name = re.sub(r"[/\\\x00-\x1f]", "_", text).strip() or "output"
    # "." and ".." are directories, a name past the file systems' limit cannot be written
    # (ConfigurationUnsupported); another name starting with a dot (a macro gave nothing, as in
    # "{Label}{Extension}") is prefixed, so it is neither hidden nor the encoder's temporary file.
    if name in (".", ".."):
        raise NameClash(f"An output file would be named '{name}'.")
    if name.startswith("."):
        name = "output" + name
    if len(name.encode()) > MAX_NAME:
        raise NameClash(f"An output file name would be longer than {MAX_NAME} bytes.")
    return name


def _seconds(pos: dict[str, Any], fps: float, duration: float) -> float:
    kind = pos["kind"]
    if kind == "time":
        return float(pos["seconds"])
    if kind == "frame":
        return float(pos["n"]) / fps
    if kind == "pct":
        return duration * float(pos["value"]) / 100
    return min(2.0, duration / 2)  # {Best}


def target_times(image: dict[str, Any], fps: float, duration: float) -> list[float]:
    """Clip-relative seconds at which one codec takes its thumbnails."""
    start = max(0.0, _seconds(image["start"], fps, duration))
    if image["start"]["kind"] == "best" or image["range"] == {"kind": "frame", "n": 1}:
        return [min(start, max(0.0, duration - 1 / fps))]
    step = _seconds(image["step"], fps, duration)
    stop = min(duration, start + _seconds(image["range"], fps, duration))
    if step <= 0:
        return [start]
    times: list[float] = []
    t = start
    while t < stop - 1e-9 and len(times) < MAX_THUMBNAILS:
        times.append(t)
        t += step
    return times or [min(start, max(0.0, duration - 1 / fps))]


class Thumbnailer:
    """Takes decoded video frames with their clip time; writes images as their times pass."""

    def __init__(self, ctx: Any, formats: dict[str, str], out_dir: str) -> None:
        self.ctx, self.out_dir, self.formats = ctx, out_dir, formats
        self.files: list[str] = []
        self.jobs: list[dict[str, Any]] = []
        fps = float(ctx.fps)
        for image in ctx.plan["images"]:
            layers = []
            for layer in image["layers"]:
                w, h, pw, ph = layer_size(layer, ctx.size, image["stretchMode"])
                pix = "yuvj420p" if image["format"] == "jpg" else "rgb24"
                chain = [*ctx.pre, ("scale", f"{pw}:{ph}"), ("setsar", "1")]
                if (pw, ph) != (w, h):
                    chain.append(("pad", f"{w}:{h}:(ow-iw)/2:(oh-ih)/2:black"))
                chain.append(("format", pix))
                layers.append({"layer": layer, "size": (w, h), "pix": pix, "chain": chain})
            times = target_times(image, fps, ctx.duration)
            self.jobs.append({"image": image, "layers": layers, "times": times, "next": 0})
        self._within_budget()

    def _within_budget(self) -> None:
        """Cut each image codec's times so the output stays within MAX_PICTURES and
        MAX_PICTURE_PIXELS (earlier codecs first)."""
        pictures, pixels = 0, 0
        for job in self.jobs:
            per_time = len(job["layers"])
            cost = sum(w * h for w, h in (spec["size"] for spec in job["layers"]))
            room = min(
                (MAX_PICTURES - pictures) // max(1, per_time), (MAX_PICTURE_PIXELS - pixels) // max(1, cost)
            )
            job["times"] = job["times"][: max(0, room)]
            pictures += per_time * len(job["times"])
            pixels += cost * len(job["times"])

    @property
    def wants_frames(self) -> bool:
        return any(job["next"] < len(job["times"]) for job in self.jobs)

    def frame(self, frame: Any, clip_time: float) -> None:
        half = 0.5 / float(self.ctx.fps)
        for job in self.jobs:
            while job["next"] < len(job["times"]) and clip_time + half >= job["times"][job["next"]]:
                job["next"] += 1
                self._write(job, frame, job["next"])

    def _write(self, job: dict[str, Any], frame: Any, index: int) -> None:
        image = job["image"]
        for spec in job["layers"]:
            graph, sink = make_graph(self.ctx.video, spec["chain"])
            graph.push(frame)
            graph.push(None)
            picture = sink.pull()
            cc = av.CodecContext.create("mjpeg" if image["format"] == "jpg" else "png", "w")
            cc.width, cc.height = spec["size"]
            cc.pix_fmt, cc.time_base = spec["pix"], Fraction(1, 25)
            if image["format"] == "jpg":
                q = round(31 - 29 * spec["layer"].get("quality", 70) / 100)
                cc.qmin = cc.qmax = q
            picture.pts = None
            data = b"".join(bytes(p) for p in cc.encode(picture) + cc.encode(None))
            label = spec["layer"].get("label") or image.get("label")
            name = expand_pattern(
                self.formats[image["format"]],
                {
                    "Basename": self.ctx.basename,
                    "Extension": "." + image["format"],
                    "Label": label,
                    "Index": f"{index:06d}",
                    "Resolution": f"{spec['size'][0]}x{spec['size'][1]}",
                    "Codec": "JpgImage" if image["format"] == "jpg" else "PngImage",
                },
            )
            if name in self.files:
                raise NameClash(
                    f"Two thumbnails would be named {name}; add {{Index}} or {{Label}} to the pattern."
                )
            with open(os.path.join(self.out_dir, name), "wb") as fh:
                fh.write(data)
            self.files.append(name)
