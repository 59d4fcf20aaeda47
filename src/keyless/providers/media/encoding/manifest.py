"""The ``.ism`` server manifest (SMIL 2.0) the encoder writes next to its MP4s.

Shape as Azure's encoder writes it (MicrosoftDocs azure-docs, media-services/latest
signal-descriptive-audio-howto.md, an AdaptiveStreaming output for input ``ignite.mp4``)::

    <?xml version="1.0" encoding="utf-8"?>
    <smil xmlns="http://www.w3.org/2001/SMIL20/Language">
      <head>
        <meta name="clientManifestRelativePath" content="ignite.ismc" />   (only with an .ismc)
        <meta name="formats" content="mp4-v3" />
      </head>
      <body>
        <switch>
          <audio src="ignite_320x180_AACAudio_381.mp4" systemBitrate="128041" systemLanguage="eng">
            <param name="systemBitrate" value="128041" valuetype="data" />
            <param name="trackID" value="2" valuetype="data" />
            <param name="trackName" value="aac_eng_2_128041_2_1" valuetype="data" />
            <param name="systemLanguage" value="eng" valuetype="data" />
          </audio>
          <video src="ignite_1280x720_AACAudio_3549.mp4" systemBitrate="3549855"> ... trackName "video"

Keyless writes no ``.ismc`` or ``.mpi`` track index files (the streaming side builds what it needs
from the MP4s), so the ``clientManifestRelativePath`` meta and ``trackIndex`` params are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

SMIL_NS = "http://www.w3.org/2001/SMIL20/Language"


@dataclass(frozen=True)
class Track:
    """One track of one output file. ``kind`` "video"|"audio"; ``bitrate`` bits/s; ``track_id``
    the MP4 track ID (1-based stream order); ``language`` ISO 639-2 (``und`` when unknown);
    ``file_bitrate`` the whole file's bits/s."""

    kind: str
    src: str
    bitrate: int
    track_id: int
    language: str = "und"
    channels: int = 2
    file_bitrate: int = 0  # the whole file's: Azure points audio at the lightest file


def _param(name: str, value: str | int) -> str:
    return f'        <param name="{name}" value={quoteattr(str(value))} valuetype="data" />'


def server_manifest(tracks: list[Track]) -> str:
    """The ``.ism`` text. Audio first, then video by descending bitrate, as Azure orders them; one
    audio entry per distinct (language, bitrate), pointing at the lowest-bitrate file carrying it."""
    audio: dict[tuple[str, int], Track] = {}
    for t in sorted((t for t in tracks if t.kind == "audio"), key=lambda t: (t.bitrate, t.file_bitrate)):
        audio.setdefault((t.language, t.bitrate), t)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<smil xmlns="{SMIL_NS}">',
        "  <head>",
        '    <meta name="formats" content="mp4-v3" />',
        "  </head>",
        "  <body>",
        "    <switch>",
    ]
    for t in audio.values():
        name = f"aac_{t.language}_{t.channels}_{t.bitrate}_{t.track_id}_1"
        lines += [
            f'      <audio src={quoteattr(t.src)} systemBitrate="{t.bitrate}" '
            f"systemLanguage={quoteattr(t.language)}>",
            _param("systemBitrate", t.bitrate),
            _param("trackID", t.track_id),
            _param("trackName", name),
            _param("systemLanguage", t.language),
            "      </audio>",
        ]
    for t in sorted((t for t in tracks if t.kind == "video"), key=lambda t: -t.bitrate):
        lines += [
            f'      <video src={quoteattr(t.src)} systemBitrate="{t.bitrate}">',
            _param("systemBitrate", t.bitrate),
            _param("trackID", t.track_id),
            _param("trackName", "video"),
            "      </video>",
        ]
    lines += ["    </switch>", "  </body>", "</smil>", ""]
    return "\n".join(lines)
