"""Malformed requests, fuzzed: the daemon answers INVALID_ARGUMENT or NOT_FOUND (or
PERMISSION_DENIED for excluded paths) and keeps serving; it never crashes or says INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2 as pb
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2_grpc as pb_grpc
from sfxmatch.service.auth import bearer
from sfxmatch.service.server import Daemon
from test_service_support import *  # noqa: F403  (fixtures)

EXPECTED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
}
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_missing = st.sampled_from(["", "relative.mp4", "/no/such/file.mp4", "/tmp/\u00e9\u4e2d.mov"])
_weird_text = st.one_of(
    st.text(max_size=40),
    st.just("x" * 5000),
    st.just("/" + "a" * 9000),
    st.just("bad\x00path"),
)
_times = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e9, max_value=1e9),
    st.just(-0.5),
)


@st.composite
def bad_clip(draw: st.DrawFn, video: str) -> pb.SourceClip:
    """A clip with at least one thing wrong."""
    path = draw(st.one_of(_missing, _weird_text, st.just(video)))
    source_in, source_out, record = draw(_times), draw(_times), draw(_times)
    if path == video and draw(st.booleans()):
        source_in, source_out = 2.0, 1.0  # backwards
    elif path == video:
        record = -abs(record) - 1.0
    return pb.SourceClip(
        path=path, source_in=source_in, source_out=source_out, record_start=record, name="c"
    )


@st.composite
def bad_suggest(draw: st.DrawFn, video: str) -> pb.SuggestRequest:
    kind = draw(st.sampled_from(["empty", "path", "edit", "options"]))
    if kind == "empty":
        return pb.SuggestRequest()
    if kind == "path":
        return pb.SuggestRequest(video_path=draw(st.one_of(_missing, _weird_text)))
    fps = pb.Rational(
        numerator=draw(st.integers(-(2**40), 2**40)), denominator=draw(st.integers(-5, 1001))
    )
    clips = draw(st.lists(bad_clip(video), min_size=0, max_size=4))
    if kind == "options":
        fps, clips = (
            pb.Rational(numerator=25, denominator=1),
            [pb.SourceClip(path=video, source_in=0, source_out=1, record_start=0)],
        )
        options = pb.SuggestOptions(
            top_k=draw(st.integers(-(2**31), 0)),
            segment=draw(st.floats(max_value=0.0)),
            rule=draw(st.text(max_size=20).filter(lambda r: r not in ("report", "threshold"))),
        )
        return pb.SuggestRequest(edit=pb.Edit(clips=clips, fps=fps), options=options)
    return pb.SuggestRequest(edit=pb.Edit(clips=clips, fps=fps, start_timecode="00:00:00:00"))


def _check(daemon: Daemon, stub: pb_grpc.SfxmatchStub, call, request, token: str) -> None:
    meta = bearer(token)
    with pytest.raises(grpc.RpcError) as refused:
        reply = call(request, metadata=meta, timeout=60)
        if not hasattr(reply, "DESCRIPTOR"):
            list(reply)
    assert refused.value.code() in EXPECTED, (request, refused.value.details())
    assert refused.value.details()


@pytest.fixture(scope="module")
def stub(daemon: Daemon):
    with grpc.insecure_channel(daemon.addresses[0]) as channel:
        yield pb_grpc.SfxmatchStub(channel)


def test_fuzzed_suggest_requests(daemon: Daemon, stub, token: str, cut_video) -> None:
    video = str(cut_video[0])

    @FUZZ
    @given(request=bad_suggest(video))
    def run(request: pb.SuggestRequest) -> None:
        _check(daemon, stub, stub.Suggest, request, token)

    run()
    assert not daemon.jobs.list(active_only=True)
    assert stub.Version(pb.VersionRequest(), metadata=bearer(token), timeout=10).api


@FUZZ
@given(
    text=_weird_text,
    kind=st.text(max_size=10).filter(lambda k: k not in ("", "ambience", "effect", "music")),
    top_k=st.integers(-(2**31), 2**31 - 1),
)
def test_fuzzed_search_requests(daemon: Daemon, stub, token: str, text, kind, top_k) -> None:
    request = pb.LibrarySearchRequest(text=text, kind=kind, top_k=top_k, libraries=["nope"])
    _check(daemon, stub, stub.LibrarySearch, request, token)


@FUZZ
@given(path=st.one_of(_missing, _weird_text), name=st.text(max_size=30))
def test_fuzzed_library_add(daemon: Daemon, stub, token: str, path: str, name: str) -> None:
    _check(daemon, stub, stub.LibraryAdd, pb.LibraryAddRequest(path=path, name=name), token)


@FUZZ
@given(job_id=_weird_text, names=st.lists(_weird_text, min_size=1, max_size=3))
def test_fuzzed_jobs_and_index(daemon: Daemon, stub, token: str, job_id: str, names) -> None:
    _check(daemon, stub, stub.GetJob, pb.GetJobRequest(job_id=job_id), token)
    _check(daemon, stub, stub.CancelJob, pb.CancelJobRequest(job_id=job_id), token)
    _check(daemon, stub, stub.LibraryIndex, pb.LibraryIndexRequest(names=names), token)
