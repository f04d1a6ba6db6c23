// Fleet dashboard: queue, pools, workers, decisions and a small SVG chart; polled every 3 s.
"use strict";
const NS = "http://www.w3.org/2000/svg";

function rows(tbody, items, cells, key) {
  // each cell carries its column's name: a narrow screen shows a stacked table as "name value" lines
  const names = [...tbody.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  tbody.replaceChildren(...items.map((it) => {
    const tr = el("tr", key ? { "data-id": key(it) } : {});
    cells(it).forEach((c, i) => tr.append(el("td", { text: c == null ? "" : String(c), "data-label": names[i] || "" })));
    return tr;
  }));
}

function line(svg, pts, xOf, yOf, cls) {
  if (pts.length === 0) return;
  const p = document.createElementNS(NS, "polyline");
  p.setAttribute("points", pts.map((s) => xOf(s.at).toFixed(1) + "," + yOf(s.v).toFixed(1)).join(" "));
  p.setAttribute("class", cls);
  svg.append(p);
}

function axis(t0, t1) {
  const box = document.getElementById("chart-axis");
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => el("span", { text: fmtClock(t0 + f * (t1 - t0)) }));
  box.replaceChildren(...ticks);
  box.dataset.from = String(t0); box.dataset.to = String(t1);
}

function fmtClock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function chart(samples) {
  const svg = document.getElementById("chart");
  svg.replaceChildren();
  svg.dataset.points = String(samples.length);
  if (samples.length === 0) return;
  const t0 = samples[0].at, t1 = Math.max(samples[samples.length - 1].at, t0 + 1);
  // jobs waiting to be retried (delayed) are pending work too: without them the queue looks empty
  const q = samples.map((s) => ({ at: s.at, v: s.visible + s.in_flight + (s.delayed || 0) }));
  const w = samples.map((s) => ({ at: s.at, v: s.workers }));
  const b = samples.map((s) => ({ at: s.at, v: s.busy }));
  const top = Math.max(1, ...q.map((s) => s.v), ...w.map((s) => s.v));
  const xOf = (t) => 10 + ((t - t0) / (t1 - t0)) * 780;
  const yOf = (v) => 190 - (v / top) * 175;
  // Labels are HTML around the SVG: the chart stretches (preserveAspectRatio="none"), text must not.
  document.getElementById("chart-max").textContent = "max " + top;
  axis(t0, t1);
  line(svg, q, xOf, yOf, "q");
  line(svg, w, xOf, yOf, "w");
  line(svg, b, xOf, yOf, "b");
}

async function refresh() {
  try {
    const [queue, pools, workers, decisions, cost, history] = await Promise.all([
      api("GET", "/api/fleet/queue"), api("GET", "/api/fleet/pools"), api("GET", "/api/fleet/workers?include_gone=true"),
      api("GET", "/api/fleet/decisions?limit=50"), api("GET", "/api/fleet/cost"), api("GET", "/api/fleet/history"),
    ]);
    if (!queue) return;
    const stats = document.getElementById("queue-stats");
    stats.replaceChildren(...[["visible", queue.visible], ["in flight", queue.in_flight], ["waiting to retry", queue.delayed],
      ["dead", queue.dead], ["cost so far", "$" + cost.total.toFixed(4)]].map(([k, v]) =>
      el("div", { class: "stat" }, el("b", { text: String(v) }), el("span", { text: k }))));
    rows(document.querySelector("#pools tbody"), pools, (p) => [p.name, p.provider, p.desired, p.running, p.busy,
      p.min + "/" + p.max, p.price_per_hour, "$" + (cost.pools[p.name] || 0).toFixed(4),
      p.provider_error ? "provider failing: " + p.provider_error : (p.last_cause || "")], (p) => p.name);
    // Gone workers fold away: the table shows who is working now; the finished ones stay countable.
    const live = workers.filter((w) => w.state !== "gone");
    const gone = workers.filter((w) => w.state === "gone");
    rows(document.querySelector("#workers tbody"), live, (w) => [w.id, w.pool, w.state,
      w.job_id ? (w.job_kind || "job") + " " + w.job_id.slice(0, 8) : "",
      w.job_id ? Math.round(w.progress * 100) + " %" : "", w.jobs_done, fmtTime(w.last_seen)], (w) => w.id);
    document.getElementById("no-workers").hidden = live.length > 0;
    document.getElementById("workers").parentElement.hidden = live.length === 0;
    const fold = document.getElementById("gone-workers");
    fold.hidden = gone.length === 0;
    fold.dataset.count = String(gone.length);
    document.getElementById("gone-summary").textContent =
      gone.length + " finished worker" + (gone.length === 1 ? "" : "s");
    rows(fold.querySelector("tbody"), gone, (w) => [w.id, w.pool, w.jobs_done, fmtTime(w.started_at),
      w.stopped_at ? fmtTime(w.stopped_at) : fmtTime(w.last_seen)], (w) => w.id);
    rows(document.querySelector("#decisions tbody"), decisions, (d) => [fmtTime(d.at), d.pool, d.policy,
      d.desired, d.running, d.busy, "+" + d.launched + "/-" + d.retired, d.reason]);
    chart(history.samples);
  } catch (e) { console.error(e); }
}
refresh();
setInterval(refresh, 3000);
