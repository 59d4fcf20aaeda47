"""Transform output presets: validation, the normalized echo and the encode plan run.py executes.

Wire facts (shared/reference/media-jobs.md, "Encoder" section): the preset shapes, enums, ranges and
defaults are those of Azure/azure-rest-api-specs ``specification/mediaservices/resource-manager/
Microsoft.Media/Encoding/stable/2022-07-01/Encoding.json``. A BuiltInStandardEncoderPreset is echoed
as sent (examples/transforms-create.json). A StandardEncoderPreset is echoed with the encoder's
defaults filled (a recorded GET of an AMS-compatible service: keyFrameInterval PT2S, stretchMode
AutoSize, syncMode Auto, sceneChangeDetection false, rateControlMode ABR, complexity Balanced; per
H.264 layer maxBitrate = bitrate, bFrames 3, slices 0, adaptiveBFrame true, profile Auto, level
"auto", bufferWindow PT5S, referenceFrames 3, crf 23, entropyMode Cabac; image codecs get stretchMode
and syncMode; Mp4Format gets ``outputFiles: []``). Unknown properties are dropped, as a typed
service model does. Error texts are Keyless's (Azure's are not published).

``check_preset(preset, path) -> dict`` raises ``children.bad_request(message, target=<json path>)``.
``plan(normalized) -> dict`` is JSON-serializable: ``{"video": [...], "audio": [...], "images": [...],
"formats": [...], "filters": {...}, "interleave": bool, "measuredBitrate": bool}`` (see ``plan``).
"""

from __future__ import annotations

import re
from typing import Any

from keyless.providers.media.children import bad_request
from keyless.providers.media.encoding.values import (
    _LEVEL,
    MAX_BITRATE,
    MAX_ITEMS,
    MAX_OUTPUT_FILES,
    MAX_PIXELS,
    MAX_TEXT,
    MIN_BITRATE,
    _bool,
    _duration,
    _enum,
    _frame_rate,
    _int,
    _label,
    _list,
    _num,
    _obj,
    _offset,
    _position,
    _size,
    _str,
)

BUILTIN = "#Microsoft.Media.BuiltInStandardEncoderPreset"
STANDARD = "#Microsoft.Media.StandardEncoderPreset"
# Valid in Azure, but Keyless has no analyzers: refused with a 400 naming the type.
ANALYZERS = frozenset(
    {
        "#Microsoft.Media.AudioAnalyzerPreset",
        "#Microsoft.Media.VideoAnalyzerPreset",
        "#Microsoft.Media.FaceDetectorPreset",
    }
)

BUILTIN_NAMES = (
    "H264SingleBitrateSD",
    "H264SingleBitrate720p",
    "H264SingleBitrate1080p",
    "AdaptiveStreaming",
    "AACGoodQualityAudio",
    "DDGoodQualityAudio",
    "ContentAwareEncodingExperimental",
    "ContentAwareEncoding",
    "CopyAllBitrateNonInterleaved",
    "H264MultipleBitrate1080p",
    "H264MultipleBitrate720p",
    "H264MultipleBitrateSD",
    "H265ContentAwareEncoding",
    "H265AdaptiveStreaming",
    "H265SingleBitrate720p",
    "H265SingleBitrate1080p",
    "H265SingleBitrate4K",
)
COMPLEXITY = ("Speed", "Balanced", "Quality")
STRETCH = ("None", "AutoSize", "AutoFit")
SYNC = ("Auto", "Passthrough", "Cfr", "Vfr")
RATE_CONTROL = ("ABR", "CBR", "CRF")
H264_PROFILES = ("Auto", "Baseline", "Main", "High", "High422", "High444")
H265_PROFILES = ("Auto", "Main", "Main10")
ENTROPY = ("Cabac", "Cavlc")
AAC_PROFILES = ("AacLc", "HeAacV1", "HeAacV2")
ROTATION = ("Auto", "None", "Rotate0", "Rotate90", "Rotate180", "Rotate270")
DEINTERLACE_MODE = ("Off", "AutoPixelAdaptive")
DEINTERLACE_PARITY = ("Auto", "TopFieldFirst", "BottomFieldFirst")
INTERLEAVE = ("NonInterleavedOutput", "InterleavedOutput")
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
# DDAudio's description in Encoding.json lists exactly these.
DD_CHANNELS = (1, 2, 6)
DD_RATES = (32000, 44100, 48000)
DD_BITRATES = frozenset(
    {32000, 40000, 48000, 56000, 64000, 80000, 96000, 112000, 128000, 160000, 192000}
    | {224000, 256000, 320000, 384000, 448000, 512000, 576000, 640000}
)
# libx264 / libx265 speed presets per complexity (Keyless's choice; BuiltIns use Balanced).
X264_PRESET = {"Speed": "ultrafast", "Balanced": "veryfast", "Quality": "medium"}
X265_PRESET = {"Speed": "ultrafast", "Balanced": "superfast", "Quality": "fast"}

_MACRO = re.compile(r"\{([A-Za-z]+)\}")
MACROS = frozenset(
    {"Basename", "Label", "Bitrate", "Codec", "Resolution", "Index", "Extension", "AudioStream"}
)


# ---------------------------------------------------------------------------------------------
# Preset objects.


def check_preset(preset: Any, path: str) -> dict[str, Any]:
    """Validate one transform output's ``preset`` and return it as the service echoes it.

    ``path`` is the JSON path of the preset in the request (``properties.outputs[0].preset``);
    errors carry a target below it. Raises ``bad_request`` (400 BadRequest)."""
    body = _obj(preset, path)
    kind = body.get("@odata.type")
    if kind == BUILTIN:
        return _check_builtin(body, path)
    if kind == STANDARD:
        return _check_standard(body, path)
    target = f"{path}.@odata.type"
    if kind in ANALYZERS:
        raise bad_request(f"The preset type '{kind}' is not supported by this service.", target=target)
    shown = kind if isinstance(kind, str) and len(kind) <= MAX_TEXT else "(missing)"
    raise bad_request(f"The preset type '{shown}' is not a known preset type.", target=target)


def _check_builtin(body: dict[str, Any], path: str) -> dict[str, Any]:
    if "presetName" not in body:
        raise bad_request("The presetName property is required.", target=f"{path}.presetName")
    name = body["presetName"]
    if not isinstance(name, str) or name.lower() not in {n.lower() for n in BUILTIN_NAMES}:
        shown = name if isinstance(name, str) and len(name) <= MAX_TEXT else "(invalid)"
        raise bad_request(
            f"The preset name '{shown}' is not a known built-in preset.", target=f"{path}.presetName"
        )
    out: dict[str, Any] = {
        "@odata.type": BUILTIN,
        "presetName": _enum(name, f"{path}.presetName", BUILTIN_NAMES),
    }
    if body.get("configurations") is not None:
        out["configurations"] = _check_configurations(body["configurations"], f"{path}.configurations")
    return out


def _check_configurations(value: Any, path: str) -> dict[str, Any]:
    """PresetConfigurations: accepted for every BuiltIn, honoured by the content-aware ladders."""
    body = _obj(value, path)
    out: dict[str, Any] = {}
    for key, check in (
        ("complexity", lambda v, p: _enum(v, p, COMPLEXITY)),
        ("interleaveOutput", lambda v, p: _enum(v, p, INTERLEAVE)),
        ("keyFrameIntervalInSeconds", lambda v, p: _num(v, p, 0.5, 20)),
        ("maxBitrateBps", lambda v, p: _int(v, p, MIN_BITRATE, MAX_BITRATE)),
        ("maxHeight", lambda v, p: _int(v, p, 1, MAX_PIXELS)),
        ("maxLayers", lambda v, p: _int(v, p, 1, MAX_ITEMS)),
        ("minBitrateBps", lambda v, p: _int(v, p, MIN_BITRATE, MAX_BITRATE)),
        ("minHeight", lambda v, p: _int(v, p, 1, MAX_PIXELS)),
    ):
        if body.get(key) is not None:
            out[key] = check(body[key], f"{path}.{key}")
    if out.get("minHeight", 0) > out.get("maxHeight", MAX_PIXELS):
        raise bad_request("minHeight must not be greater than maxHeight.", target=f"{path}.minHeight")
    if out.get("minBitrateBps", 0) > out.get("maxBitrateBps", MAX_BITRATE):
        raise bad_request(
            "minBitrateBps must not be greater than maxBitrateBps.", target=f"{path}.minBitrateBps"
        )
    return out


VIDEO_TYPES = {"#Microsoft.Media.H264Video": "h264", "#Microsoft.Media.H265Video": "h265"}
AUDIO_TYPES = {"#Microsoft.Media.AacAudio": "aac", "#Microsoft.Media.DDAudio": "ac3"}
IMAGE_TYPES = {"#Microsoft.Media.JpgImage": "jpg", "#Microsoft.Media.PngImage": "png"}
COPY_TYPES = {"#Microsoft.Media.CopyVideo": "video", "#Microsoft.Media.CopyAudio": "audio"}
FORMAT_TYPES = {
    "#Microsoft.Media.Mp4Format": "mp4",
    "#Microsoft.Media.TransportStreamFormat": "ts",
    "#Microsoft.Media.JpgFormat": "jpg",
    "#Microsoft.Media.PngFormat": "png",
}


def _check_standard(body: dict[str, Any], path: str) -> dict[str, Any]:
    for key in ("codecs", "formats"):
        if key not in body:
            raise bad_request(f"The {key} property is required.", target=f"{path}.{key}")
    codecs = [
        _check_codec(c, f"{path}.codecs[{i}]")
        for i, c in enumerate(_list(body["codecs"], f"{path}.codecs", min_len=1))
    ]
    formats = [
        _check_format(f, f"{path}.formats[{i}]")
        for i, f in enumerate(_list(body["formats"], f"{path}.formats", min_len=1))
    ]
    out: dict[str, Any] = {"@odata.type": STANDARD}
    if body.get("experimentalOptions") is not None:
        out["experimentalOptions"] = _check_options(
            body["experimentalOptions"], f"{path}.experimentalOptions"
        )
    if body.get("filters") is not None:
        out["filters"] = _check_filters(body["filters"], f"{path}.filters")
    out["codecs"] = codecs
    out["formats"] = formats
    _cross_check(out, path)
    _check_thumbnail_names(out, path)
    return out


def _check_options(value: Any, path: str) -> dict[str, str]:
    body = _obj(value, path)
    return {_str(k, path, 64): _str(v, f"{path}.{k}") for k, v in body.items()}


def _check_codec(value: Any, path: str) -> dict[str, Any]:
    body = _obj(value, path)
    kind = body.get("@odata.type")
    out: dict[str, Any] = {"@odata.type": kind}
    if body.get("label") is not None:
        out["label"] = _label(body["label"], f"{path}.label")
    if kind in COPY_TYPES:
        return out
    if kind in AUDIO_TYPES:
        return _check_audio(body, out, path)
    if kind in VIDEO_TYPES or kind in IMAGE_TYPES:
        return _check_video(body, out, path)
    shown = kind if isinstance(kind, str) and len(kind) <= MAX_TEXT else "(missing)"
    raise bad_request(f"The codec type '{shown}' is not a known codec type.", target=f"{path}.@odata.type")


def _check_audio(body: dict[str, Any], out: dict[str, Any], path: str) -> dict[str, Any]:
    dd = body["@odata.type"] == "#Microsoft.Media.DDAudio"
    if body.get("channels") is not None:
        channels = _int(body["channels"], f"{path}.channels", 1, 8)
        if dd and channels not in DD_CHANNELS:
            raise bad_request("DDAudio supports 1, 2 or 6 channels.", target=f"{path}.channels")
        out["channels"] = channels
    if body.get("samplingRate") is not None:
        rate = _int(body["samplingRate"], f"{path}.samplingRate", 8000, 96000)
        if rate not in (DD_RATES if dd else AAC_RATES):
            allowed = ", ".join(str(r) for r in (DD_RATES if dd else AAC_RATES))
            raise bad_request(f"The sampling rate must be one of: {allowed}.", target=f"{path}.samplingRate")
        out["samplingRate"] = rate
    if body.get("bitrate") is not None:
        bitrate = _int(body["bitrate"], f"{path}.bitrate", 8000, 640000)
        if dd and bitrate not in DD_BITRATES:
            raise bad_request(
                "The bitrate is not one the AC-3 specification supports.", target=f"{path}.bitrate"
            )
        out["bitrate"] = bitrate
    if not dd and body.get("profile") is not None:
        out["profile"] = _enum(body["profile"], f"{path}.profile", AAC_PROFILES)
    return out


def _check_video(body: dict[str, Any], out: dict[str, Any], path: str) -> dict[str, Any]:
    kind = body["@odata.type"]
    image = kind in IMAGE_TYPES
    if body.get("keyFrameInterval") is not None or not image:
        out["keyFrameInterval"] = _duration(
            body.get("keyFrameInterval", "PT2S"), f"{path}.keyFrameInterval", 0.5, 20
        )[0]
    out["stretchMode"] = _enum(body.get("stretchMode", "AutoSize"), f"{path}.stretchMode", STRETCH)
    out["syncMode"] = _enum(body.get("syncMode", "Auto"), f"{path}.syncMode", SYNC)
    if image:
        if body.get("start") is None:
            raise bad_request("The start property is required.", target=f"{path}.start")
        out["start"] = _position(body["start"], f"{path}.start", best=True)
        for key in ("step", "range"):
            if body.get(key) is not None:
                out[key] = _position(body[key], f"{path}.{key}", best=False)
        if kind == "#Microsoft.Media.JpgImage" and body.get("spriteColumn") is not None:
            out["spriteColumn"] = _int(body["spriteColumn"], f"{path}.spriteColumn", 1, 256)
    else:
        out["sceneChangeDetection"] = _bool(
            body.get("sceneChangeDetection", False), f"{path}.sceneChangeDetection"
        )
        if kind == "#Microsoft.Media.H264Video":
            out["rateControlMode"] = _enum(
                body.get("rateControlMode", "ABR"), f"{path}.rateControlMode", RATE_CONTROL
            )
        out["complexity"] = _enum(body.get("complexity", "Balanced"), f"{path}.complexity", COMPLEXITY)
    if "layers" not in body or body["layers"] is None:
        if not image:
            raise bad_request("At least one layer is required.", target=f"{path}.layers")
        body = {**body, "layers": [{}]}  # an image codec without layers: one at the input size
    layers = _list(body["layers"], f"{path}.layers", min_len=1)
    out["layers"] = [_check_layer(layer, kind, f"{path}.layers[{i}]") for i, layer in enumerate(layers)]
    return out


def _check_layer(value: Any, kind: str, path: str) -> dict[str, Any]:
    body = _obj(value, path)
    out: dict[str, Any] = {}
    for key in ("width", "height"):
        if body.get(key) is not None:
            out[key] = _size(body[key], f"{path}.{key}")
    if body.get("label") is not None:
        out["label"] = _label(body["label"], f"{path}.label")
    if kind in IMAGE_TYPES:
        if kind == "#Microsoft.Media.JpgImage" and body.get("quality") is not None:
            out["quality"] = _int(body["quality"], f"{path}.quality", 0, 100)
        return out
    h264 = kind == "#Microsoft.Media.H264Video"
    if body.get("bitrate") is None:
        raise bad_request("The bitrate property is required.", target=f"{path}.bitrate")
    out["bitrate"] = _int(body["bitrate"], f"{path}.bitrate", MIN_BITRATE, MAX_BITRATE)
    out["maxBitrate"] = _int(
        body.get("maxBitrate", out["bitrate"]), f"{path}.maxBitrate", MIN_BITRATE, MAX_BITRATE
    )
    if out["maxBitrate"] < out["bitrate"]:
        raise bad_request("maxBitrate must not be less than bitrate.", target=f"{path}.maxBitrate")
    out["bFrames"] = _int(body.get("bFrames", 3), f"{path}.bFrames", 0, 16)
    if body.get("frameRate") is not None:
        out["frameRate"] = _frame_rate(body["frameRate"], f"{path}.frameRate")
    out["slices"] = _int(body.get("slices", 0), f"{path}.slices", 0, 32)
    out["adaptiveBFrame"] = _bool(body.get("adaptiveBFrame", True), f"{path}.adaptiveBFrame")
    profiles = H264_PROFILES if h264 else H265_PROFILES
    out["profile"] = _enum(body.get("profile", "Auto"), f"{path}.profile", profiles)
    level = body.get("level", "auto")
    if (
        not isinstance(level, str)
        or not _LEVEL.fullmatch(level)
        or (level[0].isdigit() and float(level) > 6.2)
    ):
        raise bad_request("The level must be Auto or a number up to 6.2.", target=f"{path}.level")
    out["level"] = level
    out["bufferWindow"] = _duration(body.get("bufferWindow", "PT5S"), f"{path}.bufferWindow", 0.1, 100)[0]
    out["referenceFrames"] = _int(body.get("referenceFrames", 3), f"{path}.referenceFrames", 1, 16)
    out["crf"] = _num(body.get("crf", 23 if h264 else 28), f"{path}.crf", 0, 51)
    if h264:
        out["entropyMode"] = _enum(body.get("entropyMode", "Cabac"), f"{path}.entropyMode", ENTROPY)
    return out


def _check_format(value: Any, path: str) -> dict[str, Any]:
    body = _obj(value, path)
    kind = body.get("@odata.type")
    if kind not in FORMAT_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) <= MAX_TEXT else "(missing)"
        raise bad_request(
            f"The format type '{shown}' is not a known format type.", target=f"{path}.@odata.type"
        )
    if body.get("filenamePattern") is None:
        raise bad_request("The filenamePattern property is required.", target=f"{path}.filenamePattern")
    pattern = _str(body["filenamePattern"], f"{path}.filenamePattern")
    for macro in _MACRO.findall(pattern):
        if macro not in MACROS:
            raise bad_request(
                f"The filenamePattern macro '{{{macro}}}' is not supported.", target=f"{path}.filenamePattern"
            )
    if re.search(r"[/\\\x00-\x1f]", pattern) or pattern.startswith("."):
        raise bad_request(
            "The filenamePattern must not contain path characters or start with a dot.",
            target=f"{path}.filenamePattern",
        )
    out: dict[str, Any] = {"@odata.type": kind, "filenamePattern": pattern}
    if FORMAT_TYPES[kind] in ("mp4", "ts"):
        files = _list(body.get("outputFiles") or [], f"{path}.outputFiles", limit=MAX_OUTPUT_FILES)
        out["outputFiles"] = []
        for i, entry in enumerate(files):
            entry_path = f"{path}.outputFiles[{i}]"
            labels = _list(_obj(entry, entry_path).get("labels"), f"{entry_path}.labels", min_len=1)
            checked = [_label(lb, f"{entry_path}.labels[{j}]") for j, lb in enumerate(labels)]
            out["outputFiles"].append({"labels": checked})
    return out


def _check_filters(value: Any, path: str) -> dict[str, Any]:
    body = _obj(value, path)
    out: dict[str, Any] = {}
    if body.get("deinterlace") is not None:
        d = _obj(body["deinterlace"], f"{path}.deinterlace")
        out["deinterlace"] = {
            "parity": _enum(d.get("parity", "Auto"), f"{path}.deinterlace.parity", DEINTERLACE_PARITY),
            "mode": _enum(d.get("mode", "AutoPixelAdaptive"), f"{path}.deinterlace.mode", DEINTERLACE_MODE),
        }
    if body.get("rotation") is not None:
        out["rotation"] = _enum(body["rotation"], f"{path}.rotation", ROTATION)
    if body.get("crop") is not None:
        crop = _obj(body["crop"], f"{path}.crop")
        out["crop"] = {}
        for key in ("left", "top", "width", "height"):
            if crop.get(key) is not None:
                check = _offset if key in ("left", "top") else _size
                out["crop"][key] = check(crop[key], f"{path}.crop.{key}")
    for key in ("fadeIn", "fadeOut"):
        if body.get(key) is not None:
            fade = _obj(body[key], f"{path}.{key}")
            for req in ("duration", "fadeColor"):
                if fade.get(req) is None:
                    raise bad_request(f"The {req} property is required.", target=f"{path}.{key}.{req}")
            out[key] = {
                "duration": _position(fade["duration"], f"{path}.{key}.duration", best=False),
                "fadeColor": _str(fade["fadeColor"], f"{path}.{key}.fadeColor", 64),
            }
            if fade.get("start") is not None:
                out[key]["start"] = _position(fade["start"], f"{path}.{key}.start", best=False)
    if body.get("overlays") is not None:
        overlays = _list(body["overlays"], f"{path}.overlays")
        out["overlays"] = [_check_overlay(o, f"{path}.overlays[{i}]") for i, o in enumerate(overlays)]
    return out


OVERLAY_TYPES = ("#Microsoft.Media.AudioOverlay", "#Microsoft.Media.VideoOverlay")


def _check_overlay(value: Any, path: str) -> dict[str, Any]:
    """Overlays are accepted and echoed as sent (az's recorded test_ams_transform shows a VideoOverlay
    echoed with nothing added); run.py does not apply them (they need a second, labelled job input)."""
    body = _obj(value, path)
    kind = body.get("@odata.type")
    if kind not in OVERLAY_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) <= MAX_TEXT else "(missing)"
        raise bad_request(
            f"The overlay type '{shown}' is not a known overlay type.", target=f"{path}.@odata.type"
        )
    if body.get("inputLabel") is None:
        raise bad_request("The inputLabel property is required.", target=f"{path}.inputLabel")
    out: dict[str, Any] = {
        "@odata.type": kind,
        "inputLabel": _label(body["inputLabel"], f"{path}.inputLabel"),
    }
    for key in ("start", "end", "fadeInDuration", "fadeOutDuration"):
        if body.get(key) is not None:
            out[key] = _duration(body[key], f"{path}.{key}", 0, 10**7)[0]
    for key in ("audioGainLevel", "opacity"):
        if body.get(key) is not None and (key == "audioGainLevel" or kind.endswith("VideoOverlay")):
            out[key] = _num(body[key], f"{path}.{key}", 0, 1)
    for key in ("position", "cropRectangle"):
        if kind.endswith("VideoOverlay") and body.get(key) is not None:
            rect = _obj(body[key], f"{path}.{key}")
            out[key] = {
                k: (_offset if k in ("left", "top") else _size)(rect[k], f"{path}.{key}.{k}")
                for k in ("left", "top", "width", "height")
                if rect.get(k) is not None
            }
    return out


def _cross_check(preset: dict[str, Any], path: str) -> None:
    """Formats need codecs of their kind; outputFiles labels must exist; names must not collide."""
    codecs, formats = preset["codecs"], preset["formats"]
    kinds = {FORMAT_TYPES[f["@odata.type"]] for f in formats}
    av_codecs = [c for c in codecs if c["@odata.type"] not in IMAGE_TYPES]
    labels = {c.get("label") for c in codecs} | {
        layer.get("label") for c in codecs for layer in c.get("layers", [])
    }
    if sum(len(c.get("layers", [])) for c in codecs if c["@odata.type"] in IMAGE_TYPES) > MAX_ITEMS:
        raise bad_request(
            f"At most {MAX_ITEMS} image layers can be specified over all image codecs.",
            target=f"{path}.codecs",
        )
    for i, codec in enumerate(codecs):
        image = IMAGE_TYPES.get(codec["@odata.type"])
        if image and image not in kinds:
            raise bad_request(
                f"The {image.upper()} image codec has no {image.capitalize()}Format in formats.",
                target=f"{path}.codecs[{i}]",
            )
    if (
        sum(
            1
            for c in codecs
            if c["@odata.type"] in VIDEO_TYPES or c["@odata.type"] == "#Microsoft.Media.CopyVideo"
        )
        > 1
    ):
        raise bad_request("At most one video codec can be specified.", target=f"{path}.codecs")
    for i, fmt in enumerate(formats):
        kind = FORMAT_TYPES[fmt["@odata.type"]]
        fpath = f"{path}.formats[{i}]"
        if kind in ("jpg", "png") and not any(IMAGE_TYPES.get(c["@odata.type"]) == kind for c in codecs):
            raise bad_request(f"The {kind.upper()} format has no matching image codec.", target=fpath)
        if kind in ("mp4", "ts"):
            if not av_codecs:
                raise bad_request("The format has no video or audio codec to write.", target=fpath)
            for j, entry in enumerate(fmt["outputFiles"]):
                for k, label in enumerate(entry["labels"]):
                    if label not in labels:
                        raise bad_request(
                            f"The label '{label}' does not match any codec or layer label.",
                            target=f"{fpath}.outputFiles[{j}].labels[{k}]",
                        )
            layers = sum(len(c.get("layers", [])) for c in av_codecs) or 1
            files = len(fmt["outputFiles"]) or layers
            if files > 1 and not _MACRO_DISTINCT.search(fmt["filenamePattern"]):
                raise bad_request(
                    "The filenamePattern must contain {Label}, {Bitrate} or {Resolution} to give each "
                    "output file a unique name.",
                    target=f"{fpath}.filenamePattern",
                )


_MACRO_DISTINCT = re.compile(r"\{(Label|Bitrate|Resolution|Index)\}")


def _single_image(codec: dict[str, Any]) -> bool:
    """True when an image codec yields one picture per layer ({Best}, or a range of 1 frame)."""
    return bool(codec["start"] == "{Best}" or codec.get("range") == "1")


def _check_thumbnail_names(preset: dict[str, Any], path: str) -> None:
    """Several thumbnails per format need {Index} in its pattern (else every one has the same name)."""
    for i, fmt in enumerate(preset["formats"]):
        kind = FORMAT_TYPES[fmt["@odata.type"]]
        if kind not in ("jpg", "png") or "{Index}" in fmt["filenamePattern"]:
            continue
        codecs = [c for c in preset["codecs"] if IMAGE_TYPES.get(c["@odata.type"]) == kind]
        pictures = sum(len(c["layers"]) for c in codecs)
        several = not all(_single_image(c) for c in codecs)
        if several or (pictures > 1 and "{Label}" not in fmt["filenamePattern"]):
            raise bad_request(
                "The filenamePattern of a thumbnail format must contain {Index}.",
                target=f"{path}.formats[{i}].filenamePattern",
            )


def plan(preset: dict[str, Any]) -> dict[str, Any]:
    """The JSON-serializable encode plan of a normalized preset (shape: ``plans.plan``)."""
    from keyless.providers.media.encoding import plans  # plans builds on this module's parsers

    return plans.plan(preset)
