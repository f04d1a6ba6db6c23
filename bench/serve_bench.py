"""Viewers at scale: wrk against `ebbtide serve` and against nginx on the same files, in one run.

    ./.venv/bin/python bench/serve_bench.py [--duration 10] [--connections 50] [--workers N]

Makes a real HLS set (a generated 720p clip through the real worker) in a temp folder, then runs
wrk (Debian's) on: a 360p and a 720p segment from `ebbtide serve` with the default number of
processes, the same two served by nginx straight from the store folder (the baseline: one nginx
worker, sendfile), the 360p segment through nginx with the X-Accel-Redirect hand-off, the same
segment from `ebbtide serve --workers 1`, the same segment through nginx as an edge cache in
front of the app (`ebbtide nginx-conf --cache-dir`: hits after the first fetch), a signed
variant playlist, the master playlist with a bearer token, the gallery list, and /health.
Prints req/s, MiB/s, p50/p99, ratios to nginx and the server side's CPU per request (app processes
and nginx together), which moves less than req/s when other work shares the machine.

Not a test: figures depend on the machine and its load; quote the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import m3u8
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ebbtide.media.samples import generate_clip  # noqa: E402
from ebbtide.web.nginx import nginx_conf  # noqa: E402

EBBTIDE = [sys.executable, "-m", "ebbtide.cli.main"]
PREFIX = "/_ebbtide_files/"
console = Console(width=150)


@dataclass(frozen=True)
class Run:
    name: str
    rps: float
    mib_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float  # server-side CPU (app processes + nginx) per request: steadier than req/s on a shared box


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def _size(text: str) -> float:
    m = re.match(r"([\d.]+)([KMG]?)B", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"": 1 / 1024**2, "K": 1 / 1024, "M": 1.0, "G": 1024.0}[m.group(2)]


SERVERS: set[int] = set()  # root pids of what serves (ebbtide serve, nginx); their trees' CPU is counted


def server_cpu() -> float:
    import psutil

    total = 0.0
    for pid in list(SERVERS):
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                t = proc.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def wrk(name: str, url: str, duration: int, connections: int, headers: dict[str, str] | None = None) -> Run:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cpu0 = server_cpu()
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60).stdout
    cpu = server_cpu() - cpu0
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    mib = _size(re.search(r"Transfer/sec:\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Run(name, rps, mib, p50, p99, int(bad.group(1)) if bad else 0, 1e6 * cpu / max(1, done))


def mean_of(name: str, a: Run, b: Run) -> Run:
    return Run(name, (a.rps + b.rps) / 2, (a.mib_s + b.mib_s) / 2, (a.p50_ms + b.p50_ms) / 2,
               max(a.p99_ms, b.p99_ms), a.errors + b.errors, (a.cpu_us + b.cpu_us) / 2)


class Serve:
    def __init__(self, config: Path, port: int, workers: int | None) -> None:
        self.config, self.port, self.workers = config, port, workers
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        e = dict(os.environ, EBBTIDE_CONFIG=str(self.config), EBBTIDE_WEB__PORT=str(self.port))
        e["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + e.get("PYTHONPATH", "")
        return e

    def __enter__(self) -> Serve:
        extra = ["--workers", str(self.workers)] if self.workers else []
        self.proc = subprocess.Popen(
            [*EBBTIDE, "serve", "--port", str(self.port), *extra],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_health(f"http://127.0.0.1:{self.port}")
        time.sleep(1.0)  # let every process finish importing
        SERVERS.add(self.proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            SERVERS.discard(self.proc.pid)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def wait_health(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def cli(config: Path, *args: str) -> str:
    env = dict(os.environ, EBBTIDE_CONFIG=str(config))
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([*EBBTIDE, *args], env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"ebbtide {' '.join(args)} failed: {out.stderr[-2000:]}")
    return out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", type=int, default=None, help="ebbtide serve processes (default: its own)")
    args = ap.parse_args()
    if not shutil.which("wrk") or not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        raise SystemExit("wrk and nginx are needed: apt-get install wrk nginx-light")
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"

    load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    tmp = Path(tempfile.mkdtemp(prefix="ebbtide-serve-bench-"))
    try:
        app_port, front_port, static_port = free_port(), free_port(), free_port()
        data = tmp / "data"
        config = tmp / "ebbtide.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(data),
                    "web": {"host": "127.0.0.1", "port": app_port},
                    "queue": {"wait": 0.2},
                }
            )
        )
        console.print("making an HLS set (720p clip, real worker)…")
        clip = generate_clip(tmp / "match.mp4", seconds=12, width=1280, height=720, noise=6)
        cli(config, "users", "add", "viewer", "--password", "bench-password-1")
        token = cli(config, "users", "token", "viewer").strip()
        auth = {"Authorization": f"Bearer {token}"}
        with Serve(config, app_port, 1):
            base = f"http://127.0.0.1:{app_port}"
            with open(clip, "rb") as fh:
                r = httpx.post(base + "/api/gallery/uploads", headers=auth, timeout=120,
                               files={"file": ("match.mp4", fh, "video/mp4")}, data={"title": "bench"})
            r.raise_for_status()
            media_id = r.json()["id"]
        cli(config, "worker", "--once")
        store = data / "store"

        with Serve(config, app_port, args.workers):
            base = f"http://127.0.0.1:{app_port}"
            master_path = f"/api/stream/videos/{media_id}/master.m3u8"
            master = m3u8.loads(httpx.get(base + master_path, headers=auth).text)
            by_height = {pl.stream_info.resolution[1]: pl.uri for pl in master.playlists}
            seg_urls: dict[int, str] = {}
            variant_360 = by_height[360]
            for h in (360, 720):
                variant = m3u8.loads(httpx.get(base + by_height[h]).text)
                seg_urls[h] = max(variant.segments, key=lambda s: s.duration).uri
            key_of = {h: u.split("?")[0].removeprefix("/files/") for h, u in seg_urls.items()}
            sizes = {h: (store / k).stat().st_size for h, k in key_of.items()}
            console.print(f"segments: 360p {sizes[360] / 1024:.0f} KiB, 720p {sizes[720] / 1024:.0f} KiB")

            state = tmp / "nginx"
            state.mkdir()
            static = f"""
server {{
    listen 127.0.0.1:{static_port};
    location /files/ {{ alias {store}/; sendfile on; tcp_nopush on; }}
}}
"""
            conf = nginx_conf(store, f"127.0.0.1:{app_port}", listen=f"127.0.0.1:{front_port}",
                              internal_prefix=PREFIX, standalone=True, pid_dir=state,
                              user="root" if os.geteuid() == 0 else None, cache_dir=state / "cache")
            head, _, _ = conf.rstrip().rpartition("}")  # add the static server inside http {}
            conf = head + static + "}\n"
            (state / "nginx.conf").write_text(conf)
            nginx = subprocess.Popen([nginx_bin, "-c", str(state / "nginx.conf"), "-p", str(state)],
                                     stderr=subprocess.DEVNULL)
            SERVERS.add(nginx.pid)
            try:
                wait_health(f"http://127.0.0.1:{front_port}")
                d, c = args.duration, args.connections
                sbase = f"http://127.0.0.1:{static_port}"
                runs: list[tuple[Run, Run | None]] = []
                for h in (360, 720):
                    path = seg_urls[h]
                    # the machine is shared: nginx before and after ours, the baseline is their mean
                    before = wrk(f"segment {h}p: nginx static", sbase + path.split("?")[0], d, c)
                    ours = wrk(f"segment {h}p: ebbtide serve", base + path, d, c)
                    after = wrk(f"segment {h}p: nginx static", sbase + path.split("?")[0], d, c)
                    ref = mean_of(f"segment {h}p: nginx static (mean of 2)", before, after)
                    runs += [(ours, ref), (ref, None)]
                ref360 = next(r for r, _ in runs if r.name.startswith("segment 360p: nginx static"))
                front = f"http://127.0.0.1:{front_port}" + seg_urls[360]
                httpx.get(front).raise_for_status()  # the one miss that fills the edge cache
                runs.append((wrk("segment 360p: nginx edge cache in front", front, d, c), ref360))
                # the hand-off needs the app to say so: restart it with accel_redirect on
                with Serve(config, free_port(), 1) as single:
                    one = wrk("segment 360p: ebbtide serve --workers 1", f"http://127.0.0.1:{single.port}"
                              + seg_urls[360], d, c)
                runs.append((one, ref360))
                runs.append((wrk("variant playlist (signed)", base + variant_360, d, c), None))
                runs.append((wrk("master playlist (bearer token)", base + master_path, d, c, auth), None))
                gallery = base + "/api/gallery/videos"
                runs.append((wrk("gallery list (bearer token)", gallery, d, c, auth), None))
                runs.append((wrk("/health", base + "/health", d, c), None))
            finally:
                SERVERS.discard(nginx.pid)
                nginx.terminate()
                nginx.wait(timeout=10)

        # the X-Accel-Redirect hand-off: the app checks, nginx sends
        accel_cfg = yaml.safe_load(config.read_text())
        accel_cfg["web"]["accel_redirect"] = PREFIX
        config.write_text(yaml.safe_dump(accel_cfg))
        with Serve(config, app_port, args.workers):
            nginx = subprocess.Popen([nginx_bin, "-c", str(state / "nginx.conf"), "-p", str(state)],
                                     stderr=subprocess.DEVNULL)
            SERVERS.add(nginx.pid)
            try:
                wait_health(f"http://127.0.0.1:{front_port}")
                static_url = f"http://127.0.0.1:{static_port}" + seg_urls[360].split("?")[0]
                before = wrk("nginx static", static_url, args.duration, args.connections)
                hand = wrk("segment 360p: nginx hand-off", f"http://127.0.0.1:{front_port}" + seg_urls[360],
                           args.duration, args.connections)
                after = wrk("nginx static", static_url, args.duration, args.connections)
                ref2 = mean_of("segment 360p: nginx static (again, mean of 2)", before, after)
                runs += [(hand, ref2), (ref2, None)]
            finally:
                SERVERS.discard(nginx.pid)
                nginx.terminate()
                nginx.wait(timeout=10)

        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        table = Table(title=f"wrk -t2 -c{args.connections} -d{args.duration}s on {os.cpu_count()} cores; "
                      f"load average at start {load_start}, at end {load}")
        cols = ("route", "req/s", "MiB/s", "p50 ms", "p99 ms", "non-2xx", "÷ nginx req/s",
                "server CPU µs/req")
        for col in cols:
            table.add_column(col, justify="left" if col == "route" else "right")
        for run, ref in runs:
            ratio = f"{run.rps / ref.rps:.3f}" if ref else ""
            table.add_row(run.name, f"{run.rps:,.0f}", f"{run.mib_s:,.1f}", f"{run.p50_ms:.1f}",
                          f"{run.p99_ms:.1f}", str(run.errors), ratio, f"{run.cpu_us:,.0f}")
        console.print(table)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
