"""Encode plans: a normalized preset (``presets.check_preset``'s result) turned into what run.py
executes, BuiltIn presets expanded into layers. See ``plan`` for the shape; the ladders and name
patterns are documented where they are defined (facts: shared/reference/media-jobs.md, "Encoder")."""

from __future__ import annotations

from typing import Any

from keyless.providers.media.encoding.presets import (
    AUDIO_TYPES,
    BUILTIN,
    FORMAT_TYPES,
    IMAGE_TYPES,
    VIDEO_TYPES,
    X264_PRESET,
    X265_PRESET,
)
from keyless.providers.media.encoding.values import (
    MAX_BITRATE,
    MAX_ITEMS,
    MAX_PIXELS,
    parse_duration,
    parse_position,
    parse_size,
)

AAC_STEREO = {
    "codec": "aac",
    "label": None,
    "channels": 2,
    "samplingRate": 48000,
    "bitrate": 128000,
    "profile": "AacLc",
}
# (height, kbps) ladders. The 1080p/720p ones follow the documented layer counts and ranges of
# H264MultipleBitrate1080p/720p (8 layers 6000..400 kbps, 6 layers 3400..400 kbps); SD's rungs and
# every auto/content-aware ladder are Keyless's choice (Azure computes them from the input).
LADDER_1080 = [
    (1080, 6000),
    (1080, 4700),
    (720, 3400),
    (540, 2250),
    (540, 1500),
    (360, 1000),
    (360, 650),
    (180, 400),
]
LADDER_720 = LADDER_1080[2:]
LADDER_SD = [(480, 1900), (480, 1300), (360, 1000), (360, 650), (240, 400)]
SINGLE = {
    "H264SingleBitrateSD": ("h264", 480, 2_200_000),
    "H264SingleBitrate720p": ("h264", 720, 4_500_000),
    "H264SingleBitrate1080p": ("h264", 1080, 6_750_000),
    "H265SingleBitrate720p": ("h265", 720, 1_800_000),
    "H265SingleBitrate1080p": ("h265", 1080, 3_500_000),
    "H265SingleBitrate4K": ("h265", 2160, 9_500_000),
}
# Observed names of Azure's encoder for built-in presets: "ignite_1280x720_AACAudio_3549.mp4", the
# number being the file's measured kbps (azure-docs media-services/latest signal-descriptive-audio).
BUILTIN_PATTERN = "{Basename}_{Resolution}_AACAudio_{Bitrate}{Extension}"


def _plan_layer(layer: dict[str, Any], codec: str) -> dict[str, Any]:
    rate = layer.get("frameRate")
    frame_rate = None
    if rate:
        num, _, den = rate.partition("/")
        frame_rate = [int(num), int(den)] if den else [round(float(num) * 1000), 1000]
    return {
        "width": parse_size(layer.get("width")),
        "height": parse_size(layer.get("height")),
        "label": layer.get("label"),
        "bitrate": layer.get("bitrate"),
        "maxBitrate": layer.get("maxBitrate", layer.get("bitrate")),
        "bufferWindow": parse_duration(layer.get("bufferWindow", "PT5S")),
        "bFrames": layer.get("bFrames", 3),
        "referenceFrames": layer.get("referenceFrames", 3),
        "crf": layer.get("crf", 23 if codec == "h264" else 28),
        "profile": layer.get("profile", "Auto"),
        "level": layer.get("level", "auto"),
        "entropyMode": layer.get("entropyMode"),
        "slices": layer.get("slices", 0),
        "frameRate": frame_rate,
        "quality": layer.get("quality", 70),
    }


def _video(
    codec: str, layers: list[dict[str, Any]], complexity: str = "Balanced", **extra: Any
) -> dict[str, Any]:
    presets = X264_PRESET if codec == "h264" else X265_PRESET
    return {
        "codec": codec,
        "label": None,
        "keyFrameInterval": 2.0,
        "stretchMode": "AutoSize",
        "syncMode": "Auto",
        "rateControl": "ABR",
        "sceneChangeDetection": False,
        "encoderPreset": presets[complexity],
        "capToInput": False,
        "layers": layers,
        **extra,
    }


def _ladder(codec: str, rungs: list[tuple[int, int]], scale: float = 1.0) -> list[dict[str, Any]]:
    return [_plan_layer({"height": str(h), "bitrate": int(kbps * 1000 * scale)}, codec) for h, kbps in rungs]


def _builtin_plan(preset: dict[str, Any]) -> dict[str, Any]:
    name = preset["presetName"]
    conf = preset.get("configurations", {})
    complexity = conf.get("complexity", "Balanced")
    plan_: dict[str, Any] = {
        "video": [],
        "audio": [dict(AAC_STEREO)],
        "images": [],
        "filters": {},
        "interleave": True,
        "measuredBitrate": True,
        "formats": [{"kind": "mp4", "pattern": BUILTIN_PATTERN, "outputFiles": []}],
    }
    if name in SINGLE:
        codec, height, bitrate = SINGLE[name]
        plan_["video"] = [_video(codec, [_plan_layer({"height": str(height), "bitrate": bitrate}, codec)])]
    elif name in ("H264MultipleBitrate1080p", "H264MultipleBitrate720p", "H264MultipleBitrateSD"):
        rungs = {"1080p": LADDER_1080, "720p": LADDER_720, "SD": LADDER_SD}[
            name.removeprefix("H264MultipleBitrate")
        ]
        plan_["video"] = [_video("h264", _ladder("h264", rungs))]
    elif name in ("AACGoodQualityAudio", "DDGoodQualityAudio"):
        dd = name.startswith("DD")
        plan_["audio"] = [{**AAC_STEREO, "bitrate": 192000, "codec": "ac3" if dd else "aac"}]
        plan_["formats"][0]["pattern"] = (
            "{Basename}_" + ("DDAudio" if dd else "AACAudio") + "_{Bitrate}{Extension}"
        )
    elif name == "CopyAllBitrateNonInterleaved":
        plan_["video"] = [{"codec": "copy", "label": "video", "layers": []}]
        plan_["audio"] = [{"codec": "copy", "label": "audio"}]
        plan_["interleave"] = False
        plan_["measuredBitrate"] = False
        plan_["formats"][0]["pattern"] = "{Basename}_{Label}{Extension}"
    else:  # AdaptiveStreaming and the content-aware ones: a ladder capped to the input (never upscaled)
        codec = "h265" if name.startswith("H265") else "h264"
        rungs = LADDER_1080
        rungs = [
            r for r in rungs if conf.get("minHeight", 0) <= r[0] <= conf.get("maxHeight", MAX_PIXELS)
        ] or rungs[-1:]
        rungs = [
            r
            for r in rungs
            if conf.get("minBitrateBps", 0) <= r[1] * 1000 <= conf.get("maxBitrateBps", MAX_BITRATE)
        ] or rungs[-1:]
        if "ContentAware" in name:
            # Content-aware: fewer, distinct heights (one rung per height), at most maxLayers.
            seen: set[int] = set()
            rungs = [r for r in rungs if not (r[0] in seen or seen.add(r[0]))]  # type: ignore[func-returns-value]
        rungs = rungs[: conf.get("maxLayers", MAX_ITEMS)]
        extra: dict[str, Any] = {"capToInput": True}
        if "keyFrameIntervalInSeconds" in conf:
            extra["keyFrameInterval"] = float(conf["keyFrameIntervalInSeconds"])
        plan_["video"] = [
            _video(codec, _ladder(codec, rungs, 0.6 if codec == "h265" else 1.0), complexity, **extra)
        ]
        plan_["interleave"] = conf.get("interleaveOutput", "InterleavedOutput") == "InterleavedOutput"
    return plan_


def plan(preset: dict[str, Any]) -> dict[str, Any]:
    """The encode plan of a normalized preset (``check_preset``'s result), JSON-serializable.

    ``video``: ``[{codec: h264|h265|copy, label, keyFrameInterval s, stretchMode, syncMode,
    rateControl, sceneChangeDetection, encoderPreset (x264/x265 speed), capToInput, layers: [{width,
    height: {"px": n}|{"pct": p}|None, label, bitrate, maxBitrate bps, bufferWindow s, bFrames,
    referenceFrames, crf, profile, level, entropyMode, slices, frameRate [num, den]|None}]}]``;
    ``audio``: ``[{codec: aac|ac3|copy, label, channels, samplingRate Hz, bitrate bps, profile}]``;
    ``images``: ``[{format: jpg|png, label, start/step/range: position, stretchMode, layers,
    spriteColumn}]`` with position ``{"kind": best|time|frame|pct, ...}``; ``formats``: ``[{kind:
    mp4|ts|jpg|png, pattern, outputFiles: [[label, ...]]}]``; ``filters``: ``{crop, rotation,
    deinterlace}``; ``interleave``: audio muxed with each video (else separate audio files);
    ``measuredBitrate``: ``{Bitrate}`` in names is the file's measured kbps (BuiltIns)."""
    if preset["@odata.type"] == BUILTIN:
        return _builtin_plan(preset)
    out: dict[str, Any] = {
        "video": [],
        "audio": [],
        "images": [],
        "interleave": True,
        "measuredBitrate": False,
        "filters": preset.get("filters", {}),
        "formats": [
            {
                "kind": FORMAT_TYPES[f["@odata.type"]],
                "pattern": f["filenamePattern"],
                "outputFiles": [e["labels"] for e in f.get("outputFiles", [])],
            }
            for f in preset["formats"]
        ],
    }
    for codec in preset["codecs"]:
        kind = codec["@odata.type"]
        if kind in VIDEO_TYPES:
            name = VIDEO_TYPES[kind]
            video = _video(
                name,
                [_plan_layer(layer, name) for layer in codec["layers"]],
                codec["complexity"],
                label=codec.get("label"),
                stretchMode=codec["stretchMode"],
                syncMode=codec["syncMode"],
                keyFrameInterval=parse_duration(codec["keyFrameInterval"]),
                rateControl=codec.get("rateControlMode", "ABR"),
                sceneChangeDetection=codec["sceneChangeDetection"],
            )
            out["video"].append(video)
        elif kind == "#Microsoft.Media.CopyVideo":
            out["video"].append({"codec": "copy", "label": codec.get("label"), "layers": []})
        elif kind == "#Microsoft.Media.CopyAudio":
            out["audio"].append({"codec": "copy", "label": codec.get("label")})
        elif kind in AUDIO_TYPES:
            dd = AUDIO_TYPES[kind] == "ac3"
            out["audio"].append(
                {
                    "codec": AUDIO_TYPES[kind],
                    "label": codec.get("label"),
                    "channels": codec.get("channels", 2),
                    "samplingRate": codec.get("samplingRate", 48000),
                    "bitrate": codec.get("bitrate", 192000 if dd else 128000),
                    "profile": codec.get("profile", "AacLc"),
                }
            )
        else:
            out["images"].append(
                {
                    "format": IMAGE_TYPES[kind],
                    "label": codec.get("label"),
                    "start": parse_position(codec["start"]),
                    "step": parse_position(codec.get("step", "10%")),
                    "range": parse_position(codec.get("range", "100%")),
                    "stretchMode": codec["stretchMode"],
                    "spriteColumn": codec.get("spriteColumn"),
                    "layers": [_plan_layer(layer, "image") for layer in codec["layers"]],
                }
            )
    return out
