"""Every RPC of the daemon through the real client, on a Unix socket and on loopback TCP."""

from __future__ import annotations

import os
import stat
import threading
from fractions import Fraction
from pathlib import Path

import grpc
import pytest
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2 as pb
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2_grpc as pb_grpc
from sfxmatch.client import Client, Event
from sfxmatch.errors import ConfigError, SfxmatchError
from sfxmatch.service.server import Daemon, DaemonConfig
from sfxmatch.suggestions import Edit, RenderRequest, SourceClip, SuggestOptions
from test_service_support import *  # noqa: F403  (fixtures)
from test_service_support import status_of


@pytest.fixture(scope="session")
def indexed(daemon: Daemon, token: str, sound_library: Path) -> str:
    """The sound library added and indexed once through the daemon."""
    with Client(daemon.addresses[0], token, timeout=120) as c:
        c.library_add(sound_library, "fx")
        reports = c.library_index(["fx"])
    assert reports[0].indexed == 10
    return "fx"


def test_security_files_are_private(daemon: Daemon) -> None:
    assert daemon.socket_path is not None
    assert stat.S_ISSOCK(daemon.socket_path.stat().st_mode)
    assert stat.S_IMODE(daemon.socket_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.token_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(daemon.info_file.stat().st_mode) == 0o600
    assert any(a.startswith("127.0.0.1:") for a in daemon.addresses)


def test_non_loopback_tcp_is_refused(service_root: Path) -> None:
    config = DaemonConfig(data_dir=service_root / "other", tcp="0.0.0.0:0")
    with pytest.raises(ConfigError, match="loopback"):
        Daemon(config, pipeline=object()).start()  # type: ignore[arg-type]


def test_health_needs_no_token_and_version_does(daemon: Daemon, client: Client) -> None:
    anonymous = Client(client.target, "x" * 64)
    try:
        assert anonymous.health()
        with pytest.raises(SfxmatchError) as refused:
            anonymous.version()
        assert status_of(refused.value) == "UNAUTHENTICATED"
    finally:
        anonymous.close()
    status = client.version()
    assert status.api == "sfxmatch.v1"
    assert status.pid == os.getpid()
    assert status.model == "imagebind-tiny" and status.meaningless
    assert status.max_concurrent_jobs == 1 and status.max_queued_jobs == 4


_EMPTY = {
    "Version": pb.VersionRequest(),
    "Shutdown": pb.ShutdownRequest(),
    "LibraryAdd": pb.LibraryAddRequest(),
    "LibraryRemove": pb.LibraryRemoveRequest(),
    "LibraryIndex": pb.LibraryIndexRequest(),
    "LibraryStatus": pb.LibraryStatusRequest(),
    "LibrarySearch": pb.LibrarySearchRequest(),
    "LibrarySoundSync": pb.LibrarySoundSyncRequest(),
    "LibrarySetSync": pb.LibrarySetSyncRequest(),
    "Suggest": pb.SuggestRequest(),
    "Render": pb.RenderRequest(),
    "GetJob": pb.GetJobRequest(),
    "ListJobs": pb.ListJobsRequest(),
    "CancelJob": pb.CancelJobRequest(),
}


def test_many_clients_of_one_process_share_a_connection(client: Client) -> None:
    # Channels to one address share one connection: its stream limit must not refuse
    # the calls of a busy multi-threaded client (64 clients x a call and a health check).
    failures: list[BaseException] = []
    start = threading.Barrier(64)

    def work() -> None:
        with Client(client.target, client._metadata[0][1].split()[1], timeout=60) as mine:
            start.wait()
            for _ in range(5):
                try:
                    assert mine.version().api == "sfxmatch.v1" and mine.health(timeout=30)
                except BaseException as exc:
                    failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_health_watch_and_list(client: Client) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert client.wait_ready(timeout=30)  # Watch, without a token
    with grpc.insecure_channel(client.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        unknown = stub.Watch(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        unknown.cancel()
        listed = stub.List(health_pb2.HealthListRequest(), timeout=5).statuses
        assert listed["sfxmatch.v1.Sfxmatch"].status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as missing:
            stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_every_rpc_is_listed_here() -> None:
    service = pb.DESCRIPTOR.services_by_name["Sfxmatch"]
    assert set(service.methods_by_name) == set(_EMPTY)


@pytest.mark.parametrize("method", sorted(_EMPTY))
@pytest.mark.parametrize("metadata", [None, (("authorization", "Bearer wrong"),)])
def test_calls_without_the_token_are_refused(daemon: Daemon, method: str, metadata) -> None:
    with grpc.insecure_channel(daemon.addresses[0]) as channel:
        call = getattr(pb_grpc.SfxmatchStub(channel), method)
        with pytest.raises(grpc.RpcError) as refused:
            reply = call(_EMPTY[method], metadata=metadata, timeout=10)
            list(reply) if not hasattr(reply, "DESCRIPTOR") else None
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not daemon.stopped  # Shutdown without a token did nothing


def test_library_round_trip(client: Client, sound_library: Path, service_root: Path) -> None:
    name = f"lib-{client.target[:4]}"
    added = client.library_add(sound_library, name, kind_overrides=[("Beds/**", "ambience")])
    assert added.name == name and added.root == str(sound_library)
    assert added.kind_overrides == (("Beds/**", "ambience"),)
    events: list[Event] = list(client.stream_index([name]))
    assert events[0].accepted is not None and events[0].accepted.kind == "index"
    assert any(e.progress is not None for e in events)
    files = [e.file for e in events if e.file is not None]
    assert files and files[-1].stage == "done" and files[-1].done == files[-1].total
    report = events[-1].result[0]
    assert report.library == name and report.indexed == 10 and report.failed == 0
    assert len({e.job_id for e in events}) == 1
    (status,) = client.library_status(name)
    assert status.sounds == 10 and status.root_exists and status.last_run is not None
    assert sum(status.by_kind.values()) == 10
    hits = client.library_search("door slam", library=name, top_k=3)
    assert len(hits) == 3 and all(Path(h.path).parent == sound_library for h in hits)
    assert hits[0].score >= hits[-1].score
    assert client.library_remove(name) == 10
    with pytest.raises(SfxmatchError) as gone:
        client.library_status(name)
    assert status_of(gone.value) == "NOT_FOUND" and name in str(gone.value)


def test_sync_point_of_a_sound_and_its_override(
    client: Client, indexed: str, sound_library: Path, service_root: Path
) -> None:
    path = sound_library / "DOORWood_door slam 002.wav"
    found = client.sound_sync(path)
    assert found.library == indexed and found.source == "detector" and found.detected is not None
    assert found.duration == pytest.approx(1.0)
    hits = client.library_search("door slam", library=indexed, top_k=10)
    mine = next(h for h in hits if h.path == str(path))
    assert mine.sync_source == "detector" and mine.sync_point == pytest.approx(found.sync_point)
    (status,) = client.library_status(indexed)
    assert sum(status.sync_sources.values()) == 10
    try:
        set_ = client.library_set_sync(path, 0.25)
        assert (set_.sync_point, set_.source) == (0.25, "override")
        assert client.sound_sync(path).sync_point == 0.25
        mine = next(h for h in client.library_search("door slam", library=indexed, top_k=10)
                    if h.path == str(path))  # fmt: skip
        assert (mine.sync_point, mine.sync_source) == (0.25, "override")
        for seconds, code in ((5.0, "INVALID_ARGUMENT"), (-1.0, "INVALID_ARGUMENT")):
            with pytest.raises(SfxmatchError) as refused:
                client.library_set_sync(path, seconds)
            assert status_of(refused.value) == code
        with pytest.raises(SfxmatchError) as outside:
            client.sound_sync(service_root / "d.sock")  # exists, in no library
        assert status_of(outside.value) == "NOT_FOUND"
    finally:
        cleared = client.library_set_sync(path, None)
    assert cleared.source == "detector"


def test_progress_callbacks_and_job_table(client: Client, indexed: str) -> None:
    seen = []
    reports = client.library_index([indexed], progress=seen.append)
    assert reports[0].unchanged == 10 and reports[0].added == 0
    assert seen and all(0.0 <= p.fraction <= 1.0 for p in seen)
    jobs = client.list_jobs()
    mine = [j for j in jobs if j.kind == "index" and j.state == "succeeded"]
    assert mine and mine[-1].finished_at is not None
    again = client.get_job(mine[-1].id)
    assert again.state == "succeeded" and again.progress.fraction == 1.0
    assert client.list_jobs(active_only=True) == []
    with pytest.raises(SfxmatchError) as missing:
        client.get_job("index-999-nope")
    assert status_of(missing.value) == "NOT_FOUND"
    with pytest.raises(SfxmatchError) as missing_cancel:
        client.cancel_job("nope")
    assert status_of(missing_cancel.value) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c, d: c.library_search("   "), "INVALID_ARGUMENT"),
        (lambda c, d: c.library_search("x", kind="loud"), "INVALID_ARGUMENT"),
        (lambda c, d: c.library_search("x", top_k=-3), "INVALID_ARGUMENT"),
        (lambda c, d: c.library_search("x", library="nope"), "NOT_FOUND"),
        (lambda c, d: c.library_add(d / "missing"), "NOT_FOUND"),
        (lambda c, d: c.library_add(d / "excluded"), "PERMISSION_DENIED"),
        (lambda c, d: c.library_remove("nope"), "NOT_FOUND"),
        (lambda c, d: c.library_index(["nope"]), "NOT_FOUND"),
        (lambda c, d: c.suggest(d / "missing.mp4"), "NOT_FOUND"),
    ],
)
def test_errors_have_codes_and_name_the_problem(client: Client, service_root: Path, call, code):
    with pytest.raises(SfxmatchError) as failed:
        call(client, service_root)
    assert status_of(failed.value) == code
    assert str(failed.value)
    assert client.health()


def test_suggest_from_a_video_and_render(
    client: Client, indexed: str, cut_video, tmp_path: Path
) -> None:
    video, _truth = cut_video
    seen = []
    suggestions = client.suggest(video, SuggestOptions(libraries=(indexed,)), progress=seen.append)
    assert suggestions.meaningless and suggestions.edit.clips[0].path == str(video)
    assert len(suggestions.scenes) >= 1 and suggestions.placements
    assert seen and {p.stage for p in seen} - {"start"}
    request = RenderRequest(
        mix=str(tmp_path / "out" / "mix.wav"), timeline=str(tmp_path / "t.otio")
    )
    rendered = client.render(suggestions, request)
    files = dict(rendered.files)
    assert Path(files["mix"]).stat().st_size > 1000
    assert Path(files["timeline"]).is_file()
    assert rendered.loudness_lufs is not None


def test_suggest_from_timeline_clips(client: Client, indexed: str, cut_video) -> None:
    video, _truth = cut_video
    edit = Edit(
        clips=(
            SourceClip(str(video), 0.0, 1.2, 0.0, "a"),
            SourceClip(str(video), 4.0, 5.0, 1.2, "b"),
        ),
        fps=Fraction(25),
        start_timecode="01:00:00:00",
        name="reel 1",
    )
    suggestions = client.suggest(edit, SuggestOptions(libraries=(indexed,), top_k=2))
    assert [c.name for c in suggestions.edit.clips] == ["a", "b"]
    assert suggestions.edit.start_timecode == "01:00:00:00"
    assert suggestions.edit.fps == Fraction(25)
    assert all(len(s.ambience) <= 2 for s in suggestions.scenes)


def test_render_refuses_bad_requests(client: Client, indexed: str, service_root: Path) -> None:
    with grpc.insecure_channel(client.target) as channel:
        stub = pb_grpc.SfxmatchStub(channel)
        meta = client._metadata
        cases = [
            (pb.RenderRequest(suggestions_json="{}", mix="/tmp/x.wav"), "INVALID_ARGUMENT"),
            (pb.RenderRequest(suggestions_json="[1,", mix="/tmp/x.wav"), "INVALID_ARGUMENT"),
            (pb.RenderRequest(suggestions_json="{}"), "INVALID_ARGUMENT"),
            (pb.RenderRequest(suggestions_json="{}", mix="rel.wav"), "INVALID_ARGUMENT"),
            (
                pb.RenderRequest(suggestions_json="{}", mix=str(service_root / "excluded/m.wav")),
                "PERMISSION_DENIED",
            ),
            (
                pb.RenderRequest(suggestions_json="{}", plot="/x.png", flavour="avid"),
                "INVALID_ARGUMENT",
            ),
        ]
        for request, code in cases:
            with pytest.raises(grpc.RpcError) as failed:
                list(stub.Render(request, metadata=meta, timeout=20))
            assert failed.value.code().name == code, (request, failed.value.details())
