"""Media Services jobs (issue 12, "Speed"): what the job pipeline costs over the encoder alone.

A generated 1920x1080 clip (``--seconds``, 30 fps, H.264 + AAC stereo) is encoded to the built-in
preset ``H264SingleBitrate720p`` three ways, in interleaved rounds (the order flips every round):

(a) job: ``PUT .../transforms/hd720/jobs/{j}`` (api 2022-07-01) on an input asset holding the clip,
    timed from just before the PUT to the first ``GET`` (every 0.2 s, one kept-alive connection
    through the forward proxy) that says ``Finished``. That is queueing, the input's download
    through the blob data plane as the account, the encoder subprocess, the Put Block upload into
    the output asset and the poll's granularity. The job's own times (created, startTime, the
    output's startTime/endTime) split it.
(b) the peer: the encoder program alone (``python -m keyless.providers.media.encoding.run``) on
    the same clip as a local file, with exactly the plan
    ``presets.plan(check_preset(H264SingleBitrate720p))`` (the plan the job's transform stores is
    checked to be the same), the same ``KEYLESS_MEDIA_ENCODER_THREADS`` and the same core.
(c) for honesty: a minimal direct PyAV transcode written here (decode, scale, libx264 and AAC with
    the plan's settings), in a subprocess on the same core.

Ratio = peer time / job time (target >= 0.9x for (b)). CPU seconds of each are printed too (the
server's own plus its reaped children's, from /proc; the peers' from getrusage): on a shared
machine they move far less than wall times.

Memory: while a job runs, the server's VmRSS and every descendant's VmHWM (the encoder's peak) are
sampled from /proc every 0.2 s; for a 15 s clip (before the rounds) and the ``--seconds`` clip
(the rounds). Target: the peaks do not grow with clip length.

The server is pinned to core 0 (bench/wrk.py ``start_server``; its encoder subprocess inherits
it), the peers run on core 0 too (taskset), this process (the poller) on core 1. The clips are
synthesized by FFmpeg's ``testsrc2`` and ``sine`` sources through a PyAV filter graph (no per-pixel
Python), encoded once with libx264 ``superfast`` CRF 23; nothing is downloaded.

    python bench/media_jobs.py [--seconds 60] [--rounds 2] [--memory-seconds 15] [--threads 0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import av

from blob import MIB, Side, rss_kib, service_client
from wrk import CLIENT_CORE, SERVER_CORE, start_server

if TYPE_CHECKING:
    from tests.e2e.media_helpers import MediaSetup
    from tests.keyless_server import KeylessServer

PRESET_NAME = "H264SingleBitrate720p"
PRESET = {"@odata.type": "#Microsoft.Media.BuiltInStandardEncoderPreset", "presetName": PRESET_NAME}
TRANSFORM = "hd720"
FPS = 30
SIZE = (1920, 1080)
POLL = 0.2  # seconds between job GETs and between memory samples
JOB_TIMEOUT = 3600.0
ENCODER = "keyless.providers.media.encoding.run"
FLAT_SLACK = (1.10, 16 * 1024)  # "flat": 60 s peak <= 15 s peak x 1.10 + 16 MiB (KiB)


# --- the clip --------------------------------------------------------------------------------


def _source(graph: Any, chain: list[tuple[str, str]], sink: str = "buffersink") -> Any:
    nodes = [graph.add(name, args) for name, args in chain]
    nodes.append(graph.add(sink))
    for a, b in itertools.pairwise(nodes):
        a.link_to(b)
    return nodes[-1]


def _frames(sink: Any) -> Iterator[Any]:
    while True:
        try:
            yield sink.pull()
        except (av.error.EOFError, av.error.BlockingIOError):
            return


def make_clip(path: Path, seconds: int) -> None:
    """An MP4 of ``seconds``: 1920x1080 ``testsrc2`` at 30 fps (moving pattern, counter) in H.264
    and a 440 Hz stereo tone in AAC, muxed in step (audio up to each video frame's time)."""
    w, h = SIZE
    graph = av.filter.Graph()
    video_sink = _source(
        graph, [("testsrc2", f"size={w}x{h}:rate={FPS}:duration={seconds}"), ("format", "yuv420p")]
    )
    audio_sink = _source(
        graph,
        [
            ("sine", f"frequency=440:sample_rate=48000:duration={seconds}:samples_per_frame=1024"),
            ("aformat", "sample_fmts=fltp:channel_layouts=stereo"),
        ],
        "abuffersink",
    )
    graph.configure()
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"preset": "superfast", "crf": "23", "g": str(2 * FPS)}
        audio = out.add_stream("aac", rate=48000)
        audio.codec_context.layout, audio.codec_context.bit_rate = "stereo", 128_000
        tones = _frames(audio_sink)
        samples = 0
        for frame in _frames(video_sink):
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in video.encode(frame):
                out.mux(packet)
            while samples < (frame.pts + 1) * 48000 // FPS:
                tone = next(tones, None)
                if tone is None:
                    break
                tone.pts, tone.time_base = samples, Fraction(1, 48000)
                samples += tone.samples
                for packet in audio.encode(tone):
                    out.mux(packet)
        for tone in tones:
            tone.pts, tone.time_base = samples, Fraction(1, 48000)
            samples += tone.samples
            for packet in audio.encode(tone):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)


# --- (c) the direct PyAV transcode (runs in a child: ``--direct REQUEST_JSON``) ----------------------


def direct_transcode(req: dict[str, Any]) -> None:
    """Decode ``req["input"]``, scale to the plan's single layer (AutoSize: the height, the width by
    the input's aspect ratio, even), encode with libx264 and AAC using the plan's settings, write
    ``req["output"]``. The smallest program doing the same work as the encoder for this plan."""
    codec, audio = req["plan"]["video"][0], req["plan"]["audio"][0]
    layer = codec["layers"][0]
    threads = int(os.environ.get("KEYLESS_MEDIA_ENCODER_THREADS", "0"))
    with av.open(req["input"]) as src, av.open(req["output"], "w", format="mp4") as out:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vin.codec_context.thread_count = ain.codec_context.thread_count = threads
        height = int(layer["height"]["px"])
        width = 2 * round(vin.codec_context.width * height / vin.codec_context.height / 2)
        graph = av.filter.Graph()
        nodes = [graph.add_buffer(template=vin)]
        for name, args in (
            ("scale", f"{width}:{height}:flags=bicubic"),
            ("setsar", "1"),
            ("format", "yuv420p"),
        ):
            nodes.append(graph.add(name, args))
        nodes.append(graph.add("buffersink"))
        for a, b in itertools.pairwise(nodes):
            a.link_to(b)
        graph.configure()
        rate = Fraction(vin.average_rate or FPS)
        vout = out.add_stream("libx264", rate=rate)
        cc = vout.codec_context
        cc.width, cc.height, cc.pix_fmt, cc.thread_count = width, height, "yuv420p", threads
        cc.bit_rate = layer["bitrate"]
        gop = round(codec["keyFrameInterval"] * float(rate))
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:ref={layer['referenceFrames']}"
        vout.options = {
            "preset": codec["encoderPreset"],
            "g": str(gop),
            "bf": str(layer["bFrames"]),
            "maxrate": str(layer["maxBitrate"]),
            "bufsize": str(int(layer["maxBitrate"] * layer["bufferWindow"])),
            "x264-params": params,
        }
        aout = out.add_stream("aac", rate=audio["samplingRate"])
        aout.codec_context.layout, aout.codec_context.bit_rate = "stereo", audio["bitrate"]
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=audio["samplingRate"])
        fifo = av.AudioFifo()
        samples = 0

        def encode_video(frame: Any) -> None:
            graph.push(frame)
            for f in _frames(nodes[-1]):
                if cc.time_base is None or cc.time_base != f.time_base:
                    cc.time_base = f.time_base
                f.pict_type = av.video.frame.PictureType.NONE
                for p in vout.encode(f):
                    out.mux(p)

        def encode_audio(frame: Any, size: int = 1024) -> None:
            nonlocal samples
            for rf in resampler.resample(frame):
                rf.pts = None
                fifo.write(rf)
            while fifo.samples >= size and fifo.samples > 0:
                f = fifo.read(size)
                if f is None:
                    break
                f.pts, f.time_base = samples, Fraction(1, audio["samplingRate"])
                samples += f.samples
                for p in aout.encode(f):
                    out.mux(p)

        for packet in src.demux(vin, ain):
            for frame in packet.decode():
                (encode_video if packet.stream is vin else encode_audio)(frame)
        graph.push(None)
        for f in _frames(nodes[-1]):
            f.pict_type = av.video.frame.PictureType.NONE
            for p in vout.encode(f):
                out.mux(p)
        encode_audio(None, min(1024, fifo.samples))
        for stream in (vout, aout):
            for p in stream.encode(None):
                out.mux(p)


# --- /proc: memory and CPU -----------------------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _kib(status: dict[str, str], key: str) -> int:
    return int(status.get(key, "0 kB").split()[0])


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (by the parent pid in /proc/<pid>/stat)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def cpu_with_children(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` (seconds): its own and its reaped children's."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sampler:
    """Samples, every ``POLL`` s until stopped: ``root``'s VmRSS (peak, KiB) and every descendant's
    VmHWM (peak RSS, KiB; the encoder's); with ``root_is_worker`` the root's VmHWM counts as a
    worker's (a peer run directly)."""

    root: int
    root_is_worker: bool = False
    root_peak: int = 0
    worker_peak: int = 0
    workers: set[int] = field(default_factory=set)
    cpus: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(POLL):
                return

    def sample(self) -> None:
        root = _status(self.root)
        self.root_peak = max(self.root_peak, _kib(root, "VmRSS"))
        pids = ([self.root] if self.root_is_worker else []) + descendants(self.root)
        for pid in pids:
            status = root if pid == self.root else _status(pid)
            if status:
                self.workers.add(pid)
                self.worker_peak = max(self.worker_peak, _kib(status, "VmHWM"))
                self.cpus.add(status.get("Cpus_allowed_list", "?").strip())


# --- set-up ----------------------------------------------------------------------------------------


@dataclass
class Bench:
    """The account, its transform and one persistent ARM connection (for the job PUTs and GETs)."""

    server: KeylessServer
    setup: MediaSetup
    account: str
    arm: Any  # httpx.Client through the proxy, as the admin
    jobs: int = 0

    def job_path(self, name: str) -> str:
        from tests.e2e.media_helpers import child_path

        return child_path(
            self.server, self.setup.group, self.account, "transforms", f"{TRANSFORM}/jobs/{name}"
        )

    def container(self, asset: str, permissions: str) -> tuple[Any, str]:
        """(ContainerClient with the asset's listContainerSas URL, container URL without the query)."""
        from tests.e2e.job_helpers import container_url

        url = container_url(self.setup, self.account, asset, permissions)
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        assert self.server.process is not None
        side = Side(
            "sas", base, parts.query, str(self.server.ca_file), self.server.proxy_url, self.server.process.pid
        )
        return service_client(side).get_container_client(parts.path.strip("/")), url.split("?")[0]


def set_up(server: KeylessServer, arm: Any, clips: dict[str, Path]) -> tuple[Bench, dict[str, Any]]:
    """Group, storage account, Media Services account, transform ``hd720`` (H264SingleBitrate720p),
    one input asset per clip with the clip uploaded through its SAS URL. Returns the bench and the
    encode plan, checked equal to the plan of the preset the transform echoes."""
    from tests.e2e.job_helpers import create_asset, create_transform
    from tests.e2e.media_helpers import MediaSetup, unique

    from keyless.providers.media.encoding.presets import check_preset, plan

    setup = MediaSetup(server)
    bench = Bench(server, setup, unique("amsjobs"), arm)
    setup.create_account(bench.account)
    made = create_transform(setup, bench.account, TRANSFORM, PRESET)
    the_plan = plan(check_preset(PRESET, "properties.outputs[0].preset"))
    stored = plan(check_preset(made["properties"]["outputs"][0]["preset"], "properties.outputs[0].preset"))
    assert stored == the_plan, (stored, the_plan)
    for asset, path in clips.items():
        create_asset(setup, bench.account, asset)
        client, _ = bench.container(asset, "ReadWrite")
        with path.open("rb") as fh:
            client.upload_blob("clip.mp4", fh, length=path.stat().st_size, overwrite=True, max_concurrency=2)
    return bench, the_plan


# --- the three ways ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One encode: wall and CPU seconds, the output MP4's bytes, peaks (KiB), and notes."""

    wall: float
    cpu: float
    out_bytes: int
    worker_peak: int
    server_peak: int = 0
    note: str = ""


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


def run_job(bench: Bench, input_asset: str) -> Run:
    """(a): create a job on ``input_asset`` into a new output asset, poll until Finished."""
    from tests.e2e.job_helpers import ENCODING_API, create_asset, job_body

    bench.jobs += 1
    name, output = f"job{bench.jobs}", f"out{bench.jobs}"
    create_asset(bench.setup, bench.account, output)
    server = bench.server
    assert server.process is not None
    pid = server.process.pid
    params = {"api-version": ENCODING_API}
    cpu0 = cpu_with_children(pid)
    with Sampler(pid) as mem:
        started = time.time()
        r = bench.arm.put(bench.job_path(name), params=params, json=job_body(input_asset, output))
        assert r.status_code == 201, r.text
        while True:
            time.sleep(POLL)
            got = bench.arm.get(bench.job_path(name), params=params)
            assert got.status_code == 200, got.text
            props = got.json()["properties"]
            if props["state"] in ("Finished", "Error", "Canceled"):
                break
            if time.time() - started > JOB_TIMEOUT:
                raise SystemExit(f"job {name} not done in {JOB_TIMEOUT:.0f} s: {props}")
        wall = time.time() - started
    cpu = cpu_with_children(pid) - cpu0
    if props["state"] != "Finished":
        raise SystemExit(f"job {name} ended {props['state']}: {props['outputs'][0].get('error')}")
    client, _ = bench.container(output, "Read")
    blobs = {b.name: b.size for b in client.list_blobs()}
    mp4s = [n for n in blobs if n.endswith(".mp4")]
    assert len(mp4s) == 1 and "_1280x720_" in mp4s[0], blobs
    o = props["outputs"][0]
    created, start, o_start, o_end, end = (
        _t(x) for x in (props["created"], props["startTime"], o["startTime"], o["endTime"], props["endTime"])
    )
    note = (
        f"queued {start - created:.2f} s, input download {o_start - start:.2f} s, "
        f"encode+upload {o_end - o_start:.2f} s, settle {end - o_end:.2f} s, seen {started + wall - end:+.2f} s; "
        f"{len(mem.workers)} child process(es) on cpus {','.join(sorted(mem.cpus)) or '-'}"
    )
    return Run(wall, cpu, blobs[mp4s[0]], mem.worker_peak, mem.root_peak, note)


def _pinned(cmd: list[str]) -> list[str]:
    pin = shutil.which("taskset") and (os.cpu_count() or 1) > 1
    return ["taskset", "-c", SERVER_CORE, *cmd] if pin else cmd


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_peer(cmd: list[str], request: dict[str, Any], out_dir: Path) -> Run:
    """(b) or (c): ``cmd`` with ``request`` (JSON) on stdin, on the server's core; its MP4's size."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    cpu0, started = _child_cpu(), time.perf_counter()
    proc = subprocess.Popen(
        _pinned(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    with Sampler(proc.pid, root_is_worker=True) as mem:
        stdout, stderr = proc.communicate(json.dumps(request).encode())
    wall, cpu = time.perf_counter() - started, _child_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[-1]} failed ({proc.returncode}): {stdout[-2000:]!r} {stderr[-2000:]!r}")
    mp4s = [p for p in out_dir.iterdir() if p.suffix == ".mp4"]
    assert len(mp4s) == 1, list(out_dir.iterdir())
    return Run(wall, cpu, mp4s[0].stat().st_size, mem.worker_peak, note=f"cpus {','.join(sorted(mem.cpus))}")


# --- the run ---------------------------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    with Path("/proc/cpuinfo").open() as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    libs = av.library_versions.get("libavcodec", ())
    return (
        f"{now}; {os.cpu_count()} cores ({model}); load (1 min) {os.getloadavg()[0]:.2f}; "
        f"PyAV {av.__version__}, libavcodec {'.'.join(map(str, libs))}"
    )


def _line(label: str, run: Run, job: Run | None = None) -> str:
    ratio = f"  peer/job {run.wall / job.wall:4.2f}x" if job else ""
    return (
        f"  {label:<28} {run.wall:8.2f} s  cpu {run.cpu:8.2f} s  mp4 {run.out_bytes / 1e6:6.1f} MB"
        f"  peak {run.worker_peak / 1024:5.0f} MiB{ratio}  ({run.note})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60, help="length of the timed clip")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory-seconds", type=int, default=15, help="the short clip of the memory check")
    parser.add_argument("--threads", type=int, default=0, help="KEYLESS_MEDIA_ENCODER_THREADS (0: FFmpeg's)")
    parser.add_argument("--direct", action="store_true", help=argparse.SUPPRESS)  # (c)'s child
    args = parser.parse_args()
    if args.direct:
        direct_transcode(json.loads(sys.stdin.read(1 << 20)))
        return
    if not 1 <= args.seconds <= 3600 or not 1 <= args.memory_seconds <= 3600 or not 1 <= args.rounds <= 20:
        raise SystemExit("--seconds and --memory-seconds: 1..3600; --rounds: 1..20")
    print(f"machine: {machine()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clips = {"input": work / "clip.mp4", "input-short": work / "short.mp4"}
        for path, seconds in ((clips["input"], args.seconds), (clips["input-short"], args.memory_seconds)):
            t = time.perf_counter()
            make_clip(path, seconds)
            print(
                f"clip {seconds} s {SIZE[0]}x{SIZE[1]} {FPS} fps: {path.stat().st_size / MIB:.1f} MiB, "
                f"made in {time.perf_counter() - t:.1f} s"
            )
        server = start_server(work / "data", KEYLESS_MEDIA_ENCODER_THREADS=str(args.threads))
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            subprocess.run(
                ["taskset", "-pc", CLIENT_CORE, str(os.getpid())], capture_output=True, check=False
            )
        try:
            with server.arm() as arm:
                bench, the_plan = set_up(server, arm, clips)
                assert server.process is not None
                print(f"set-up done; server VmRSS {rss_kib(server.process.pid) / 1024:.0f} MiB")
                measure(bench, the_plan, clips, work, args)
        finally:
            server.stop()
    print(f"load (1 min) after: {os.getloadavg()[0]:.2f}; run took {time.perf_counter() - started:.0f} s")


def measure(bench: Bench, the_plan: dict[str, Any], clips: dict[str, Path], work: Path, args: Any) -> None:
    """The memory job on the short clip, then the interleaved rounds on the long one; the report."""
    print(f"threads: KEYLESS_MEDIA_ENCODER_THREADS={args.threads}; plan: {json.dumps(the_plan['video'][0])}")
    short = run_job(bench, "input-short")
    print(f"memory job, {args.memory_seconds} s clip:")
    print(_line("job", short) + f"  server VmRSS peak {short.server_peak / 1024:.0f} MiB")
    request = {"plan": the_plan, "input": str(clips["input"]), "basename": "clip", "start": None, "end": None}
    encoder = [sys.executable, "-m", ENCODER]
    direct = [sys.executable, str(Path(__file__).resolve()), "--direct"]
    ways = {
        "job": lambda: run_job(bench, "input"),
        "encoder alone": lambda: run_peer(encoder, {**request, "outputDir": str(work / "enc")}, work / "enc"),
        "direct PyAV": lambda: run_peer(
            direct, {**request, "output": str(work / "pyav" / "clip.mp4")}, work / "pyav"
        ),
    }
    results: dict[str, list[Run]] = {name: [] for name in ways}
    for r in range(args.rounds):
        print(f"round {r + 1} ({args.seconds} s clip):")
        for name in list(ways)[:: 1 if r % 2 == 0 else -1]:
            run = ways[name]()
            results[name].append(run)
            print(_line(name, run))
    best = {name: min(runs, key=lambda x: x.wall) for name, runs in results.items()}
    job = best["job"]
    print(f"best of {args.rounds} round(s), {args.seconds} s clip, {PRESET_NAME}:")
    for name, run in best.items():
        print(_line(name, run, None if name == "job" else job))
    for name in ("encoder alone", "direct PyAV"):
        ratio, cpu_ratio = best[name].wall / job.wall, best[name].cpu / job.cpu
        verdict = "met" if ratio >= 0.9 else "NOT MET"
        print(f"  {name} / job: {ratio:.2f}x wall, {cpu_ratio:.2f}x cpu (>= 0.9x: {verdict})")
    long_worker = max(x.worker_peak for x in results["job"])
    long_server = max(x.server_peak for x in results["job"])
    print(f"memory ({args.memory_seconds} s clip -> {args.seconds} s clip), peaks during the job:")
    for label, a, b in (
        ("server VmRSS", short.server_peak, long_server),
        ("encoder VmHWM", short.worker_peak, long_worker),
    ):
        flat = b <= a * FLAT_SLACK[0] + FLAT_SLACK[1]
        print(f"  {label:<14} {a / 1024:6.0f} -> {b / 1024:6.0f} MiB ({'flat' if flat else 'GROWS'})")
    peer_peak = max(x.worker_peak for x in results["encoder alone"])
    print(f"  encoder alone VmHWM ({args.seconds} s clip): {peer_peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
