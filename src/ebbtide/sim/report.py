"""Show simulated runs: one rich table per comparison, JSON, and PNG timelines (matplotlib, Agg)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.table import Table

from ebbtide.sim.result import RunResult

CAPTION = (
    "cost/idle/bound in $; bound: the least any setup pays with every upload ready within 30 min "
    "(free pools first, no boot, no idle; sim/bound.py), the same for every setup; x bound: cost/bound, "
    "* = some upload waited longer than 30 min, so the bound is no promise for it; "
    "mean/p95 upload→ready, play95 upload→first playable (chunked) and span in minutes; "
    "dup: jobs run twice at once or after ready; "
    "waste: worker-minutes of dup/killed/spot-lost attempts; kill: stopped mid-job by the scaler; "
    "spot: lost to spot reclaims; dead: dead-lettered messages; lost: never ready"
)


def _ratio(r: RunResult) -> str:
    star = "*" if r.max_ready is None or r.max_ready > r.bound_within + 1e-6 else ""
    return f"{r.cost_ratio:.2f}{star}" if r.cost_ratio is not None else f"—{star}"


def _minutes(v: float | None) -> str:
    return "—" if v is None else f"{v / 60:.1f}"


def table(results: Sequence[RunResult], title: str = "") -> Table:
    t = Table(
        title=title or None, caption=CAPTION, box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True
    )
    for col, just in (
        ("setup", "left"),
        ("cost$", "right"),
        ("idle$", "right"),
        ("bound$", "right"),
        ("x bound", "right"),
        ("mean", "right"),
        ("p95", "right"),
        ("play95", "right"),
        ("span", "right"),
        ("dup", "right"),
        ("waste", "right"),
        ("kill", "right"),
        ("spot", "right"),
        ("dead", "right"),
        ("lost", "right"),
    ):
        t.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in results:
        bad = "[red]" if (r.killed or r.dup_jobs or r.lost) else ""
        t.add_row(
            r.setup,
            f"{r.total_cost:.2f}",
            f"{r.idle_cost:.2f}",
            f"{r.lower_bound:.2f}",
            _ratio(r),
            _minutes(r.mean_ready),
            _minutes(r.p95_ready),
            _minutes(r.p95_playable),
            _minutes(r.makespan),
            f"{bad}{r.dup_jobs}",
            f"{r.wasted_minutes:.0f}",
            f"{bad}{r.killed}",
            str(r.interrupted),
            str(r.dead_lettered),
            f"{bad}{r.lost}",
        )
    return t


def overview(results: Sequence[RunResult], title: str = "") -> Table:
    """One row per scenario and setup: cost, the setup-independent bound, cost/bound, waits."""
    t = Table(title=title or None, caption=CAPTION, box=box.SIMPLE_HEAD, padding=(0, 1))
    for col in ("scenario", "setup", "cost$", "bound$", "x bound", "mean", "p95", "kill", "dup", "lost"):
        t.add_column(col, justify="left" if col in ("scenario", "setup") else "right", no_wrap=True)
    last = ""
    for r in results:
        t.add_row("" if r.scenario == last else r.scenario, r.setup, f"{r.total_cost:.2f}",
                  f"{r.lower_bound:.2f}", _ratio(r), _minutes(r.mean_ready), _minutes(r.p95_ready),
                  str(r.killed), str(r.dup_jobs), str(r.lost), end_section=False)
        last = r.scenario
    return t


def to_json(results: Sequence[RunResult]) -> str:
    return json.dumps([r.summary() for r in results], indent=2)


def plot(result: RunResult, path: Path) -> Path:
    """Queue depth, workers per pool, and one bar per job attempt, against hours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_q, ax_w, ax_j) = plt.subplots(
        3, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [1, 1, 2]}
    )
    tl = result.timeline
    # the x-axis ends at the last event (an attempt ending or a change of the timeline)
    end_h = max([b.end for b in result.bars] + [s.t for s in tl] + [1.0]) / 3600 * 1.02
    xs = [s.t / 3600 for s in tl] + [end_h]
    ax_q.step(xs, [s.visible for s in tl] + [tl[-1].visible if tl else 0], where="post", label="visible")
    ax_q.step(
        xs, [s.in_flight for s in tl] + [tl[-1].in_flight if tl else 0], where="post", label="in flight"
    )
    ax_q.set_ylabel("queue")
    ax_q.legend(loc="upper right")
    pools = sorted({p for s in tl for p, _ in s.workers})
    styles = ("-", "--", ":", "-.")
    for i, pool in enumerate(pools):
        # pools with equal counts would hide each other: a small offset and a line style each
        ys = [dict(s.workers).get(pool, 0) + 0.06 * i for s in tl]
        ax_w.step(xs, ys + ys[-1:], where="post", label=pool, linestyle=styles[i % len(styles)],
                  linewidth=2.2 - 0.4 * (i % 3), alpha=0.85)
    ax_w.set_ylabel("workers")
    if pools:
        ax_w.legend(loc="upper right")
    colors = {
        "won": "tab:green",
        "duplicate": "tab:orange",
        "killed": "tab:red",
        "interrupted": "tab:purple",
        "skipped": "tab:gray",
        "running": "tab:blue",
    }
    rows = {w: i for i, w in enumerate(sorted({b.worker_id for b in result.bars}))}
    for b in result.bars:
        ax_j.barh(
            rows[b.worker_id],
            (b.end - b.start) / 3600,
            left=b.start / 3600,
            height=0.8,
            color=colors.get(b.outcome, "black"),
            edgecolor="white",
            linewidth=0.3,
        )
    ax_j.set_yticks(list(rows.values()), list(rows.keys()), fontsize=6)
    from matplotlib.patches import Patch

    shown = sorted({b.outcome for b in result.bars})
    ax_j.legend(handles=[Patch(color=colors.get(o, "black"), label=o) for o in shown], loc="upper right",
                fontsize=7, title="attempt", title_fontsize=7)
    ax_j.set_xlim(0, end_h)
    ax_j.set_xlabel("hours")
    ax_j.set_ylabel("attempts per worker")
    fig.suptitle(
        f"{result.scenario} — {result.setup}: ${result.total_cost:.2f}, "
        f"killed {result.killed}, duplicate jobs {result.dup_jobs}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
