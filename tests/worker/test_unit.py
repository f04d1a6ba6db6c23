"""Pure decisions, message shapes and the IMDS / ECS clients (against local protocol servers:
moto implements neither IMDS nor the ECS agent endpoint)."""

from __future__ import annotations

import threading

import pytest
from worker_servers import ecs_agent_server, free_port, imds_server

from ebbtide.worker.decisions import backoff, describe_failure, is_last_receive
from ebbtide.worker.ecs_protection import EcsProtection, ecs_protection_for
from ebbtide.worker.intake import safe_filename
from ebbtide.worker.messages import JobMessage, UnknownKind, check_kind, python_target
from ebbtide.worker.spot import ImdsClient, SpotNotice, SpotWatcher, spot_enabled


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(n, 10, 600) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(20, 10, 600) == 600
    assert backoff(0, 1, 5) == 1
    assert is_last_receive(5, 5) and not is_last_receive(4, 5)


def test_media_failure_reads_as_advice() -> None:
    from ebbtide.media.errors import MediaError

    err = MediaError("notes.txt is not a video file ffmpeg can read (Invalid data)")
    text = describe_failure(err, "transcode")
    assert text.startswith("the upload is not a video file: notes.txt")
    assert "MP4" in text
    assert describe_failure(RuntimeError("boom"), "command") == "RuntimeError: boom"


def test_messages_and_kinds() -> None:
    msg = JobMessage("j1", "transcode", "m1")
    assert JobMessage.from_body(msg.body()) == msg
    assert JobMessage("j2", "command").body() == {"job_id": "j2", "kind": "command"}
    assert python_target("python:pkg.mod:solve") == ("pkg.mod", "solve")
    for bad in ("shell", "python:", "python:mod", "python:mod:1x"):
        with pytest.raises(UnknownKind):
            check_kind(bad)


def test_safe_filename() -> None:
    assert safe_filename("My clip (1).MOV") == "My_clip_1.mov"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("...") == "source"


def test_imds_no_notice_then_notice() -> None:
    with imds_server() as imds:
        client = ImdsClient(imds.url)
        assert spot_enabled("auto", client)
        assert client.notice() is None
        imds.notice = {"action": "terminate", "time": "2030-01-01T00:00:00Z"}
        assert client.notice() == SpotNotice("terminate", "2030-01-01T00:00:00Z")
        assert imds.tokens_issued >= 1 and imds.polls == 2


def test_spot_auto_is_off_without_imds() -> None:
    assert not spot_enabled("auto", ImdsClient(f"http://127.0.0.1:{free_port()}"))
    assert not spot_enabled("off", ImdsClient("http://127.0.0.1:9"))


def test_spot_watcher_calls_back_once() -> None:
    with imds_server() as imds:
        got: list[SpotNotice] = []
        done = threading.Event()
        watcher = SpotWatcher(ImdsClient(imds.url), 0.05, lambda n: (got.append(n), done.set()))
        watcher.start()
        threading.Timer(0.3, lambda: setattr(imds, "notice", {"action": "stop", "time": "t"})).start()
        assert done.wait(5)
        watcher.stop()
        assert got == [SpotNotice("stop", "t")]
        assert imds.polls >= 2  # it saw 404s first


def test_ecs_protection_toggles_only_on_change() -> None:
    with ecs_agent_server() as agent:
        prot = ecs_protection_for("auto", env={"ECS_AGENT_URI": agent.url})
        assert isinstance(prot, EcsProtection)
        prot.ensure(busy=True)
        prot.ensure(busy=True)
        prot.ensure(busy=False)
        assert [s["ProtectionEnabled"] for s in agent.states] == [True, False]
        assert agent.states[0]["ExpiresInMinutes"] == 60
    assert ecs_protection_for("auto", env={}) is None
    assert ecs_protection_for("off", env={"ECS_AGENT_URI": "http://x"}) is None
