"""check_preset / plan: the echo the service returns and a 400 with a target for each invalid kind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyless.arm.errors import ArmError
from keyless.providers.media.encoding.presets import check_preset, plan
from keyless.providers.media.encoding.values import format_duration, parse_duration

B = "#Microsoft.Media.BuiltInStandardEncoderPreset"
S = "#Microsoft.Media.StandardEncoderPreset"
P = "properties.outputs[0].preset"


def standard(**over: Any) -> dict[str, Any]:
    """A valid custom preset (azure-docs custom-preset-cli-howto), with top-level overrides."""
    preset: dict[str, Any] = {
        "@odata.type": S,
        "codecs": [
            {
                "@odata.type": "#Microsoft.Media.AacAudio",
                "channels": 2,
                "samplingRate": 48000,
                "bitrate": 128000,
            },
            {
                "@odata.type": "#Microsoft.Media.H264Video",
                "layers": [
                    {"width": "1280", "height": "720", "label": "HD", "bitrate": 3400000},
                    {"width": "640", "height": "360", "label": "SD", "bitrate": 1000000},
                ],
            },
            {
                "@odata.type": "#Microsoft.Media.PngImage",
                "start": "25%",
                "step": "25%",
                "range": "80%",
                "layers": [{"width": "50%", "height": "50%"}],
            },
        ],
        "formats": [
            {
                "@odata.type": "#Microsoft.Media.Mp4Format",
                "filenamePattern": "Video-{Basename}-{Label}-{Bitrate}{Extension}",
            },
            {
                "@odata.type": "#Microsoft.Media.PngFormat",
                "filenamePattern": "Thumbnail-{Basename}-{Index}{Extension}",
            },
        ],
    }
    preset.update(over)
    return preset


def codec(i: int, **over: Any) -> dict[str, Any]:
    preset = standard()
    preset["codecs"][i] = {**preset["codecs"][i], **over}
    return preset


def layer(**over: Any) -> dict[str, Any]:
    preset = standard()
    preset["codecs"][1]["layers"][0] = {**preset["codecs"][1]["layers"][0], **over}
    return preset


def test_builtin_echo_is_as_sent_with_canonical_name() -> None:
    out = check_preset({"@odata.type": B, "presetName": "adaptivestreaming", "extra": 1}, P)
    assert out == {"@odata.type": B, "presetName": "AdaptiveStreaming"}


def test_builtin_configurations_are_kept() -> None:
    conf = {"complexity": "speed", "maxLayers": 3, "maxHeight": 720, "keyFrameIntervalInSeconds": 2}
    out = check_preset({"@odata.type": B, "presetName": "ContentAwareEncoding", "configurations": conf}, P)
    assert out["configurations"] == {
        "complexity": "Speed",
        "maxLayers": 3,
        "maxHeight": 720,
        "keyFrameIntervalInSeconds": 2,
    }
    layers = plan(out)["video"][0]["layers"]
    assert 1 <= len(layers) <= 3 and all(la["height"]["px"] <= 720 for la in layers)


def test_standard_echo_fills_encoder_defaults() -> None:
    out = check_preset(standard(), P)
    video = out["codecs"][1]
    assert video["keyFrameInterval"] == "PT2S" and video["stretchMode"] == "AutoSize"
    assert (
        video["syncMode"] == "Auto"
        and video["complexity"] == "Balanced"
        and video["rateControlMode"] == "ABR"
    )
    assert video["sceneChangeDetection"] is False
    hd = video["layers"][0]
    assert hd == {
        "width": "1280", "height": "720", "label": "HD", "bitrate": 3400000, "maxBitrate": 3400000, "bFrames": 3,
        "slices": 0, "adaptiveBFrame": True, "profile": "Auto", "level": "auto", "bufferWindow": "PT5S",
        "referenceFrames": 3, "crf": 23, "entropyMode": "Cabac",
    }  # fmt: skip
    assert out["codecs"][2]["stretchMode"] == "AutoSize" and out["codecs"][2]["syncMode"] == "Auto"
    assert out["formats"][0]["outputFiles"] == []
    assert "outputFiles" not in out["formats"][1]
    # The normalized form is stable and its plan is JSON.
    assert check_preset(out, P) == out
    json.dumps(plan(out))


def test_durations_and_sizes_normalize() -> None:
    out = check_preset(codec(1, keyFrameInterval="PT00.5S", layers=[{"bitrate": 500000, "width": 640}]), P)
    assert out["codecs"][1]["keyFrameInterval"] == "PT0.5S"
    assert out["codecs"][1]["layers"][0]["width"] == "640"
    assert parse_duration("PT1M30.5S") == 90.5 and parse_duration("P1DT1H") == 90000
    assert parse_duration("PT") is None and parse_duration("2s") is None
    assert format_duration(90) == "PT1M30S" and format_duration(0) == "PT0S"


def test_overlays_echo_as_sent() -> None:
    # az's recording test_ams_transform (api 2020-05-01): sent and echoed unchanged.
    overlay = {
        "@odata.type": "#Microsoft.Media.VideoOverlay",
        "inputLabel": "videooverlay",
        "audioGainLevel": 1.0,
        "opacity": 1.0,
    }
    out = check_preset(standard(filters={"rotation": "Auto", "overlays": [overlay]}), P)
    assert out["filters"] == {"rotation": "Auto", "overlays": [overlay]}
    assert list(out) == ["@odata.type", "filters", "codecs", "formats"]


def test_h265_and_copy_codecs_accepted() -> None:
    preset = standard(
        codecs=[
            {
                "@odata.type": "#Microsoft.Media.H265Video",
                "layers": [{"bitrate": 1800000, "height": "720", "profile": "main"}],
            },
            {"@odata.type": "#Microsoft.Media.CopyAudio"},
        ],
        formats=[{"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "{Basename}{Extension}"}],
    )
    out = check_preset(preset, P)
    assert out["codecs"][0]["layers"][0]["crf"] == 28 and out["codecs"][0]["layers"][0]["profile"] == "Main"
    assert plan(out)["audio"] == [{"codec": "copy", "label": None}]


BAD: list[tuple[str, Any, str]] = [
    ("not an object", [], P),
    ("no type", {"presetName": "AdaptiveStreaming"}, f"{P}.@odata.type"),
    ("unknown type", {"@odata.type": "#Microsoft.Media.Nope"}, f"{P}.@odata.type"),
    ("analyzer", {"@odata.type": "#Microsoft.Media.AudioAnalyzerPreset"}, f"{P}.@odata.type"),
    ("no presetName", {"@odata.type": B}, f"{P}.presetName"),
    ("unknown presetName", {"@odata.type": B, "presetName": "H264Best"}, f"{P}.presetName"),
    ("presetName not a string", {"@odata.type": B, "presetName": 7}, f"{P}.presetName"),
    ("bad configurations", {"@odata.type": B, "presetName": "ContentAwareEncoding", "configurations": {"maxLayers": 0}},
     f"{P}.configurations.maxLayers"),
    ("min above max", {"@odata.type": B, "presetName": "ContentAwareEncoding",
                       "configurations": {"minHeight": 720, "maxHeight": 360}}, f"{P}.configurations.minHeight"),
    ("no codecs", {"@odata.type": S, "formats": []}, f"{P}.codecs"),
    ("empty codecs", standard(codecs=[]), f"{P}.codecs"),
    ("no formats", {"@odata.type": S, "codecs": standard()["codecs"]}, f"{P}.formats"),
    ("too many codecs", standard(codecs=[{"@odata.type": "#Microsoft.Media.AacAudio"}] * 17), f"{P}.codecs"),
    ("unknown codec", codec(0, **{"@odata.type": "#Microsoft.Media.Mp3Audio"}), f"{P}.codecs[0].@odata.type"),
    ("aac rate", codec(0, samplingRate=12345), f"{P}.codecs[0].samplingRate"),
    ("aac channels", codec(0, channels=9), f"{P}.codecs[0].channels"),
    ("aac bitrate", codec(0, bitrate=10), f"{P}.codecs[0].bitrate"),
    ("aac profile", codec(0, profile="Mp3"), f"{P}.codecs[0].profile"),
    ("dd channels", codec(0, **{"@odata.type": "#Microsoft.Media.DDAudio", "channels": 3}), f"{P}.codecs[0].channels"),
    ("dd bitrate", codec(0, **{"@odata.type": "#Microsoft.Media.DDAudio", "bitrate": 100000}), f"{P}.codecs[0].bitrate"),
    ("no layers", codec(1, layers=[]), f"{P}.codecs[1].layers"),
    ("too many layers", codec(1, layers=[{"bitrate": 100000, "label": f"l{i}"} for i in range(17)]), f"{P}.codecs[1].layers"),
    ("layer no bitrate", layer(bitrate=None), f"{P}.codecs[1].layers[0].bitrate"),
    ("layer bitrate bool", layer(bitrate=True), f"{P}.codecs[1].layers[0].bitrate"),
    ("layer bitrate huge", layer(bitrate=10**10), f"{P}.codecs[1].layers[0].bitrate"),
    ("layer bitrate float", layer(bitrate=1.5e6), f"{P}.codecs[1].layers[0].bitrate"),
    ("maxBitrate below", layer(maxBitrate=1000), f"{P}.codecs[1].layers[0].maxBitrate"),
    ("width text", layer(width="wide"), f"{P}.codecs[1].layers[0].width"),
    ("width percent", layer(width="150%"), f"{P}.codecs[1].layers[0].width"),
    ("height zero", layer(height="0"), f"{P}.codecs[1].layers[0].height"),
    ("height huge", layer(height="9000"), f"{P}.codecs[1].layers[0].height"),
    ("profile", layer(profile="Extreme"), f"{P}.codecs[1].layers[0].profile"),
    ("level", layer(level="7"), f"{P}.codecs[1].layers[0].level"),
    ("crf", layer(crf=60), f"{P}.codecs[1].layers[0].crf"),
    ("bFrames", layer(bFrames=-1), f"{P}.codecs[1].layers[0].bFrames"),
    ("bufferWindow", layer(bufferWindow="PT200S"), f"{P}.codecs[1].layers[0].bufferWindow"),
    ("frameRate", layer(frameRate="fast"), f"{P}.codecs[1].layers[0].frameRate"),
    ("entropy", layer(entropyMode="Huffman"), f"{P}.codecs[1].layers[0].entropyMode"),
    ("label path", layer(label="a/b"), f"{P}.codecs[1].layers[0].label"),
    ("label long", layer(label="x" * 65), f"{P}.codecs[1].layers[0].label"),
    ("kfi long", codec(1, keyFrameInterval="PT30S"), f"{P}.codecs[1].keyFrameInterval"),
    ("kfi not iso", codec(1, keyFrameInterval="2s"), f"{P}.codecs[1].keyFrameInterval"),
    ("complexity", codec(1, complexity="Max"), f"{P}.codecs[1].complexity"),
    ("stretch", codec(1, stretchMode="Fill"), f"{P}.codecs[1].stretchMode"),
    ("two video codecs", standard(codecs=[*standard()["codecs"], standard()["codecs"][1]]), f"{P}.codecs"),
    ("image no start", codec(2, start=None), f"{P}.codecs[2].start"),
    ("image bad start", codec(2, start="soon"), f"{P}.codecs[2].start"),
    ("image bad step", codec(2, step="{Best}"), f"{P}.codecs[2].step"),
    ("jpg quality", standard(
        codecs=[{"@odata.type": "#Microsoft.Media.JpgImage", "start": "{Best}", "layers": [{"quality": 101}]}],
        formats=[{"@odata.type": "#Microsoft.Media.JpgFormat", "filenamePattern": "{Basename}{Extension}"}],
    ), f"{P}.codecs[0].layers[0].quality"),
    ("image without format", standard(formats=standard()["formats"][:1]), f"{P}.codecs[2]"),
    ("format without codec", standard(codecs=standard()["codecs"][:2]), f"{P}.formats[1]"),
    ("mp4 without av codec", standard(codecs=standard()["codecs"][2:]), f"{P}.formats[0]"),
    ("unknown format", standard(formats=[{"@odata.type": "#Microsoft.Media.AviFormat", "filenamePattern": "x"}]),
     f"{P}.formats[0].@odata.type"),
    ("no pattern", standard(formats=[{"@odata.type": "#Microsoft.Media.Mp4Format"}]), f"{P}.formats[0].filenamePattern"),
    ("unknown macro", standard(formats=[{"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "{Foo}"}]),
     f"{P}.formats[0].filenamePattern"),
    ("pattern path", standard(formats=[{"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "a/{Label}"}]),
     f"{P}.formats[0].filenamePattern"),
    ("pattern long", standard(formats=[{"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "x" * 300}]),
     f"{P}.formats[0].filenamePattern"),
    ("names collide", standard(formats=[{"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "{Basename}{Extension}"},
                                        standard()["formats"][1]]), f"{P}.formats[0].filenamePattern"),
    ("thumbnails collide", standard(formats=[standard()["formats"][0],
                                             {"@odata.type": "#Microsoft.Media.PngFormat", "filenamePattern": "{Basename}{Extension}"}]),
     f"{P}.formats[1].filenamePattern"),
    ("unknown output label", standard(formats=[
        {"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "{Label}{Extension}", "outputFiles": [{"labels": ["XX"]}]},
        standard()["formats"][1]]), f"{P}.formats[0].outputFiles[0].labels[0]"),
    ("empty output labels", standard(formats=[
        {"@odata.type": "#Microsoft.Media.Mp4Format", "filenamePattern": "{Label}{Extension}", "outputFiles": [{"labels": []}]},
        standard()["formats"][1]]), f"{P}.formats[0].outputFiles[0].labels"),
    ("overlay type", standard(filters={"overlays": [{"@odata.type": "#Microsoft.Media.TextOverlay", "inputLabel": "x"}]}),
     f"{P}.filters.overlays[0].@odata.type"),
    ("overlay label", standard(filters={"overlays": [{"@odata.type": "#Microsoft.Media.AudioOverlay"}]}),
     f"{P}.filters.overlays[0].inputLabel"),
    ("overlay opacity", standard(filters={"overlays": [
        {"@odata.type": "#Microsoft.Media.VideoOverlay", "inputLabel": "x", "opacity": 2}]}), f"{P}.filters.overlays[0].opacity"),
    ("rotation", standard(filters={"rotation": "Rotate45"}), f"{P}.filters.rotation"),
    ("crop", standard(filters={"crop": {"width": "-5"}}), f"{P}.filters.crop.width"),
    ("deinterlace", standard(filters={"deinterlace": {"mode": "Bob"}}), f"{P}.filters.deinterlace.mode"),
    ("fade", standard(filters={"fadeIn": {"duration": "PT1S"}}), f"{P}.filters.fadeIn.fadeColor"),
    ("options", standard(experimentalOptions={"k": 5}), f"{P}.experimentalOptions.k"),
    ("too many keys", {**{f"k{i}": i for i in range(70)}, "@odata.type": B}, P),
]  # fmt: skip


@pytest.mark.parametrize(("case", "preset", "target"), BAD, ids=[b[0] for b in BAD])
def test_invalid_preset_is_bad_request_with_target(case: str, preset: Any, target: str) -> None:
    with pytest.raises(ArmError) as info:
        check_preset(preset, P)
    assert (info.value.status, info.value.code) == (400, "BadRequest"), case
    assert info.value.target == target, case
    assert info.value.message
