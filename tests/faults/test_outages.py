"""PostgreSQL, Redis and SQS (moto) stopped mid-run: every accepted job completes exactly once,
processing resumes within 30 s of the server's return, no process exits, /health goes 503 → 200."""

from __future__ import annotations

from pathlib import Path

from scenario import Fleet, Report, outage, write_config
from servers import PrivateMoto, PrivatePostgres, PrivateRedis


def _check(fleet: Fleet, report: Report) -> None:
    logs = fleet.logs()
    print(report, f"jobs={len(fleet.jobs)} refused={fleet.refused}")
    assert report.health_down, "/health never said 503 during the outage"
    assert report.health_back_s is not None and report.health_back_s < 30, report
    assert report.first_done_s is not None and report.first_done_s <= 30, f"{report}\n{logs}"
    assert report.all_done_s is not None, f"{fleet.states()}\n{logs}"
    assert len(fleet.jobs) >= 7
    for job_id in fleet.jobs:
        assert fleet.wins(job_id) == 1, f"job {job_id} finished {fleet.wins(job_id)} times"
    for name, proc in fleet.procs.items():
        assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{logs}"
    assert "Traceback" not in logs, logs


def test_postgresql_queue_and_catalog_stopped(
    private_pg: PrivatePostgres, data_dir: Path, clip: Path
) -> None:
    config = write_config(data_dir, {"url": private_pg.url}, private_pg.url)
    fleet = Fleet.start(config)
    try:
        report = outage(fleet, private_pg.stop, private_pg.start, clip)
        _check(fleet, report)
        assert fleet.down_parts == {"queue", "catalog"}
        assert fleet.refused >= 1  # the catalog was down: submits were refused with a clear error
    finally:
        fleet.close()


def test_redis_queue_restarted_without_persistence(
    private_redis: PrivateRedis, data_dir: Path, clip: Path
) -> None:
    config = write_config(data_dir, {"url": private_redis.url}, None)
    fleet = Fleet.start(config)
    try:
        report = outage(fleet, private_redis.stop, private_redis.start, clip)
        _check(fleet, report)
        # the catalog (SQLite) stayed up: uploads during the outage were accepted and finished
        assert fleet.down_parts == {"queue"} and fleet.refused == 0
        assert "re-sent" in fleet.logs()  # the queue forgot everything: the reconciler re-sent
    finally:
        fleet.close()


def test_sqs_endpoint_restarted_empty(private_moto: PrivateMoto, data_dir: Path, clip: Path) -> None:
    queue = {"url": "sqs://fault-jobs", "endpoint_url": private_moto.url, "region": "us-east-1"}
    config = write_config(data_dir, queue, None)
    fleet = Fleet.start(config)
    try:
        report = outage(fleet, private_moto.stop, private_moto.start, clip)
        _check(fleet, report)
        assert fleet.down_parts == {"queue"} and fleet.refused == 0
    finally:
        fleet.close()
