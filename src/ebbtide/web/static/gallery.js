// Gallery grid: thumbnails, state and live progress, polled every 2 s.
"use strict";
const grid = document.getElementById("grid");
const empty = document.getElementById("empty");

function card(v) {
  const thumb = v.thumbnail_url
    ? el("img", { src: v.thumbnail_url, alt: "", loading: "lazy" })
    : el("div", { class: "placeholder", text: v.retrying ? "waiting to retry" : v.state });
  const link = el("a", { href: "/watch/" + encodeURIComponent(v.id), class: "thumb" }, thumb);
  const title = el("a", { href: "/watch/" + encodeURIComponent(v.id), class: "title", text: v.title });
  const label = v.retrying ? "retrying" : v.state;
  const badge = el("span", { class: "state " + label, text: label });
  const meta = el("div", { class: "meta" }, badge, el("span", { class: "muted", text: fmtDuration(v.duration) }));
  const c = el("article", { class: "video", "data-id": v.id, "data-state": label }, link, title, meta);
  if (v.retrying) {
    c.append(el("p", { class: "retry", text: "Attempt " + v.attempts + " of " + v.max_attempts + " failed: " +
      (v.last_error || "no reason given") + ". It will be tried again." }));
  } else if (v.state === "queued" || v.state === "transcoding" || v.state === "uploaded") {
    c.append(el("progress", { max: 100, value: Math.round(v.progress * 100) }));
    if (v.playable_seconds > 0) {
      c.append(el("p", { class: "muted playable", text: "playable: " + fmtDuration(v.playable_seconds) + " of " + fmtDuration(v.duration) }));
    }
  }
  if (v.error) {
    c.append(el("p", { class: "error", text: v.error }));
    c.append(el("a", { href: "/watch/" + encodeURIComponent(v.id), class: "todo", text: "What to do" }));
  }
  const rename = el("button", { type: "button", text: "Rename", class: "small" });
  rename.onclick = async () => {
    const t = prompt("New title", v.title);
    if (t) { try { await api("PATCH", "/api/gallery/videos/" + v.id, { title: t }); refresh(); } catch (e) { alert(e.message); } }
  };
  const del = el("button", { type: "button", text: "Delete", class: "small danger" });
  del.onclick = async () => {
    if (confirm("Delete " + v.title + "?")) { try { await api("DELETE", "/api/gallery/videos/" + v.id); refresh(); } catch (e) { alert(e.message); } }
  };
  c.append(el("div", { class: "actions" }, rename, del));
  return c;
}

async function refresh() {
  try {
    const videos = await api("GET", "/api/gallery/videos");
    if (!videos) return;
    empty.hidden = videos.length > 0;
    grid.replaceChildren(...videos.map(card));
  } catch (e) { console.error(e); }
}
refresh();
setInterval(refresh, 2000);
