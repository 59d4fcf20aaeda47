"""Transform presets for the fuzz test: ``BAD_PRESETS``, which the service must refuse (400) before
any encoder runs, and ``HOSTILE_PRESETS``, valid extremes (sizes, bitrates, frame rates,
thumbnail counts, channels) that a job must carry to an end, Finished or Error, in bounded time.

Shapes and ranges: spec ``Encoding/stable/2022-07-01/Encoding.json`` (shared/reference/media-jobs.md,
"Encoder"); the bounds are Keyless's (``encoding/values.py``: 1-8192 px, 1,000-200,000,000 bps,
16 codecs, formats and layers, 256-character strings).
"""

from __future__ import annotations

from typing import Any

ODATA = "#Microsoft.Media."
BUILTIN, STANDARD = ODATA + "BuiltInStandardEncoderPreset", ODATA + "StandardEncoderPreset"
BUILTIN_AUDIO = {"@odata.type": BUILTIN, "presetName": "AACGoodQualityAudio"}
LAYER = {"bitrate": 400_000, "width": "64", "height": "48", "label": "v"}
H264 = {"@odata.type": ODATA + "H264Video", "complexity": "Speed", "layers": [LAYER]}
H265 = {"@odata.type": ODATA + "H265Video", "complexity": "Speed", "layers": [LAYER]}
AAC = {"@odata.type": ODATA + "AacAudio", "channels": 2, "samplingRate": 48000, "bitrate": 128_000}
DD = {"@odata.type": ODATA + "DDAudio", "channels": 2, "samplingRate": 48000, "bitrate": 192_000}
PNG = {"@odata.type": ODATA + "PngImage", "start": "0%", "step": "50%", "range": "100%"}
JPG = {"@odata.type": ODATA + "JpgImage", "start": "{Best}", "layers": [{"quality": 70}]}
MP4 = {"@odata.type": ODATA + "Mp4Format", "filenamePattern": "{Basename}-{Label}-{Bitrate}{Extension}"}
PNG_FORMAT = {"@odata.type": ODATA + "PngFormat", "filenamePattern": "t-{Index}-{Label}{Extension}"}
JPG_FORMAT = {"@odata.type": ODATA + "JpgFormat", "filenamePattern": "j-{Index}{Extension}"}


def standard(codecs: Any, formats: Any = None, **more: Any) -> dict[str, Any]:
    return {
        "@odata.type": STANDARD,
        "codecs": codecs,
        "formats": [MP4] if formats is None else formats,
        **more,
    }


def builtin(name: Any, **more: Any) -> dict[str, Any]:
    return {"@odata.type": BUILTIN, "presetName": name, **more}


def _layer(**changes: Any) -> dict[str, Any]:
    return standard([{**H264, "layers": [{**LAYER, **changes}]}])


def _video(**changes: Any) -> dict[str, Any]:
    return standard([{**H264, **changes}])


def _audio(**changes: Any) -> dict[str, Any]:
    return standard([{**AAC, **changes}])


def _dd(**changes: Any) -> dict[str, Any]:
    return standard([{**DD, **changes}])


def _png(**changes: Any) -> dict[str, Any]:
    return standard([{**PNG, **changes}], [PNG_FORMAT])


def _mp4(**changes: Any) -> dict[str, Any]:
    return standard([H264], [{**MP4, **changes}])


def _filters(**filters: Any) -> dict[str, Any]:
    return standard([H264], filters=filters)


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"width": "64"}
    for _ in range(levels):
        value = {"crop": value}
    return value


def _configured(**configurations: Any) -> dict[str, Any]:
    return builtin("ContentAwareEncoding", configurations=configurations)


# fmt: off
BAD_PRESETS: tuple[Any, ...] = (
    None, 5, "AACGoodQualityAudio", [], {}, [BUILTIN_AUDIO],
    # @odata.type confusion
    {"presetName": "AACGoodQualityAudio"}, {**BUILTIN_AUDIO, "@odata.type": "Microsoft.Media.BuiltInStandardEncoderPreset"},
    {**BUILTIN_AUDIO, "@odata.type": ODATA + "AudioAnalyzerPreset"}, {**BUILTIN_AUDIO, "@odata.type": ODATA + "H264Video"},
    {**BUILTIN_AUDIO, "@odata.type": ODATA + "JobInputAsset"}, {**BUILTIN_AUDIO, "@odata.type": 5},
    {**BUILTIN_AUDIO, "@odata.type": ODATA + "X" * 5000}, {**standard([H264]), "@odata.type": BUILTIN},
    {**BUILTIN_AUDIO, "@odata.type": STANDARD},
    # built-in names and configurations
    builtin("NoSuchPreset"), builtin(""), builtin(None), builtin(5), builtin(["AdaptiveStreaming"]),
    builtin("AdaptiveStreaming\n"), builtin("p" * 5000), builtin("AdaptiveStreaming", configurations=5),
    _configured(maxHeight=0), _configured(maxHeight=8193), _configured(minHeight=100, maxHeight=50),
    _configured(keyFrameIntervalInSeconds=0.1), _configured(keyFrameIntervalInSeconds=1e308),
    _configured(keyFrameIntervalInSeconds="2"), _configured(maxBitrateBps=1), _configured(maxBitrateBps=2**63),
    _configured(minBitrateBps=2_000_000, maxBitrateBps=1_000_000), _configured(maxLayers=0),
    _configured(maxLayers=10**18), _configured(complexity="Fastest"), _configured(interleaveOutput=True),
    # the standard preset's shape
    {"@odata.type": STANDARD}, {"@odata.type": STANDARD, "codecs": [H264]}, {"@odata.type": STANDARD, "formats": [MP4]},
    standard([]), standard([H264], []), standard("x"), standard([5]), standard([None]), standard([H264] * 17),
    standard([H264], [MP4] * 17), standard([H264, {**H264, "label": "b"}]), standard([H264, H265]),
    standard([{**AAC, "@odata.type": ODATA + "Mp3Audio"}]), standard([{**H264, "@odata.type": None}]),
    standard([H264], [{**MP4, "@odata.type": ODATA + "MkvFormat"}]), standard([PNG]), standard([H264], [PNG_FORMAT]),
    standard([PNG], [MP4, PNG_FORMAT]), standard([H264], experimentalOptions={"k": 5}),
    standard([H264], experimentalOptions=[]), standard([H264], experimentalOptions={"k" * 65: "v"}),
    standard([H264], filters=5), standard([H264], **{f"k{i}": i for i in range(70)}),
    # H.264/H.265 layers: sizes, bitrates, frame rates, and the rest
    *(_layer(width=bad) for bad in ("0", "8193", "-1", "1.5", "0%", "101%", "50.12345%", 8193, 0, "", " 64", "64px",
                                   "1e3", "\u0666\u0664", True)),
    *(_layer(height=bad) for bad in ("99999", "0", -48, "48\n")),
    *(_layer(bitrate=bad) for bad in (1, 0, -1, 999, 200_000_001, 2**63, 1e30, 1.5, "1000", True, None)),
    _layer(maxBitrate=1000), _layer(maxBitrate=-1), _layer(maxBitrate="x"),
    *(_layer(frameRate=bad) for bad in ("0", "121", "0/0", "1/0", "30000/0", "1e9", "-30", "NaN", "inf",
                                       "30000/1001/1", "0.5", "1/1000000", 30, "", "29.97.1")),
    _layer(bFrames=17), _layer(bFrames=-1), _layer(slices=33), _layer(referenceFrames=0), _layer(referenceFrames=17),
    _layer(profile="Extreme"), _layer(profile=""), _layer(level="6.3"), _layer(level="7"), _layer(level="auto1"),
    _layer(level=5.1), _layer(level="10"), _layer(bufferWindow="PT0S"), _layer(bufferWindow="PT101S"),
    _layer(bufferWindow="P1D"), _layer(bufferWindow="x"), _layer(crf=-1), _layer(crf=52), _layer(crf="23"),
    _layer(entropyMode="Zip"), _layer(adaptiveBFrame="yes"), _layer(label="a/b"), _layer(label="a\\b"), _layer(label=".."), _layer(label="."),
    _layer(label="l" * 65), _layer(label=""), _layer(label="a\u0000b"), _layer(label="c:"), _layer(label=5),
    _video(layers=[]), _video(layers=None), _video(layers=[LAYER] * 17), _video(layers=[5]), _video(layers={}),
    _video(keyFrameInterval="PT0.1S"), _video(keyFrameInterval="PT21S"), _video(keyFrameInterval="PT"),
    _video(keyFrameInterval=2), _video(rateControlMode="VBR"), _video(complexity="Fastest"),
    _video(stretchMode="Fill"), _video(syncMode="Never"), _video(sceneChangeDetection="yes"),
    standard([{**H265, "layers": [{**LAYER, "entropyMode": "Cabac", "profile": "High"}]}]),
    # audio
    _audio(channels=0), _audio(channels=9), _audio(channels=-1), _audio(samplingRate=7999), _audio(samplingRate=12345),
    _audio(samplingRate=96001), _audio(bitrate=7999), _audio(bitrate=640_001), _audio(bitrate=-128_000),
    _audio(profile="HeAacV3"), _audio(profile=5), _dd(channels=3), _dd(samplingRate=22050), _dd(bitrate=12345),
    # thumbnails
    {**_png(), "codecs": [{k: v for k, v in PNG.items() if k != "start"}]}, *(_png(start=bad) for bad in (
        "x", "101%", "-1", "{best}x", 5, None, "", "PT-1S", "1.5", "\u0661")),
    _png(step="x"), _png(step="{Best}"), _png(step="-1"), _png(range="101%"), _png(range=5),
    _png(layers=[{"width": "8193"}]), _png(layers=[{"quality": 50}] * 17),
    standard([{**JPG, "layers": [{"quality": 101}]}], [JPG_FORMAT]),
    standard([{**JPG, "layers": [{"quality": -1}]}], [JPG_FORMAT]),
    standard([{**JPG, "spriteColumn": 0}], [JPG_FORMAT]), standard([{**JPG, "spriteColumn": 257}], [JPG_FORMAT]),
    standard([{**PNG, "start": "0%"}], [{**PNG_FORMAT, "filenamePattern": "same{Extension}"}]),
    # formats: names that could leave the output folder, or collide
    _mp4(filenamePattern=None), _mp4(filenamePattern=""), _mp4(filenamePattern="p" * 257),
    _mp4(filenamePattern="../{Basename}{Extension}"), _mp4(filenamePattern="a/b{Extension}"),
    _mp4(filenamePattern="..\\x{Extension}"), _mp4(filenamePattern="x\u0001{Extension}"),
    _mp4(filenamePattern="{Nope}{Extension}"), _mp4(filenamePattern=5), _mp4(filenamePattern="..", outputFiles=[]),
    _mp4(filenamePattern="."), _mp4(outputFiles=5), _mp4(outputFiles=[{"labels": []}]),
    _mp4(outputFiles=[{"labels": ["nolabel"]}]), _mp4(outputFiles=[{"labels": [5]}]),
    _mp4(outputFiles=[{"labels": ["v"]}] * 65),
    standard([{**H264, "layers": [LAYER, {**LAYER, "bitrate": 500_000}]}], [{**MP4, "filenamePattern": "o{Extension}"}]),
    # filters
    _filters(rotation="Rotate45"), _filters(deinterlace={"mode": "On"}), _filters(deinterlace=5),
    _filters(crop={"width": "0"}), _filters(crop={"left": "-1"}), _filters(crop={"height": "101%"}),
    _filters(fadeIn={"duration": "PT1S"}), _filters(fadeIn={"fadeColor": "Black"}),
    _filters(fadeOut={"duration": "x", "fadeColor": "Black"}), _filters(fadeIn={"duration": "PT1S", "fadeColor": 5}),
    _filters(overlays=[{"@odata.type": ODATA + "VideoOverlay"}]), _filters(overlays=[{"inputLabel": "x"}]),
    _filters(overlays=[{"@odata.type": ODATA + "VideoOverlay", "inputLabel": "x", "opacity": 2}]),
    _filters(overlays=[{"@odata.type": ODATA + "AudioOverlay", "inputLabel": "x", "audioGainLevel": -1}]),
    _filters(overlays=[{"@odata.type": ODATA + "VideoOverlay", "inputLabel": "x", "start": "x"}]),
    _filters(overlays=5), _filters(crop=_deep(70)), _mp4(filenamePattern="p" * 100_000),
    standard([H264] * 1000), standard([{**H264, "layers": [LAYER] * 10_000}]),
)
# fmt: on


def _big(width: str, height: str, codec: dict[str, Any] = H264, **layer: Any) -> dict[str, Any]:
    return standard([{**codec, "layers": [{**LAYER, "width": width, "height": height, **layer}]}])


# Valid presets at the edges of every range (name -> preset): a job must end, in bounded time.
HOSTILE_PRESETS: dict[str, dict[str, Any]] = {
    "px1": _big("1", "1", bitrate=1000),
    "px8192": _big("8192", "8192", bitrate=200_000_000),
    "px8192x1": _big("8192", "1", bitrate=1000),
    "h265px8192": _big("8192", "8192", H265, bitrate=1000),
    "fps120": standard(
        [
            {
                **H264,
                "keyFrameInterval": "PT0.5S",
                "layers": [
                    {
                        **LAYER,
                        "bitrate": 1000,
                        "frameRate": "120",
                        "bFrames": 16,
                        "referenceFrames": 16,
                        "slices": 32,
                    }
                ],
            }
        ]
    ),
    "fps1": _big("64", "48", frameRate="1", bitrate=1000, bufferWindow="PT0.1S"),
    "pct": _big("0.0001%", "100%", bitrate=1000),
    "aac8": _audio(channels=8, samplingRate=96000, bitrate=8000),
    "aac1": _audio(channels=1, samplingRate=8000, bitrate=640_000, profile="HeAacV2"),
    "dd6": _dd(channels=6, bitrate=640_000),
    "step1": _png(start="0", step="1", range="100%", layers=[{"width": "16", "height": "12", "label": "s"}]),
    "step0": _png(start="0", step="0", range="100%"),
    "tinystep": _png(start="0", step="PT0.0000001S", range="100%"),
    "png8192": _png(start="{Best}", layers=[{"width": "8192", "height": "8192"}]),
    "late": _png(start="P999999D", range="1"),
    "many": standard([{**H264, "layers": [{**LAYER, "label": f"l{i}", "bitrate": 1000} for i in range(16)]}]),
}


__all__ = ["BAD_PRESETS", "BUILTIN_AUDIO", "HOSTILE_PRESETS", "builtin", "standard"]
