// Player: hls.js (vendored) with a quality menu; waits for the video to be ready.
"use strict";
const box = document.getElementById("player");
const video = document.getElementById("video");
const quality = document.getElementById("quality");
const levelEl = document.getElementById("level");
const statusEl = document.getElementById("player-status");
const id = box.dataset.id;
let hls = null;

function start(v) {
  statusEl.textContent = "";
  if (window.Hls && Hls.isSupported()) {
    hls = new Hls({ capLevelToPlayerSize: false });
    window.ebbtideHls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      hls.levels.forEach((l, i) => {
        quality.append(el("option", { value: String(i), text: (l.height ? l.height + "p" : "level " + i) }));
      });
      box.dataset.levels = String(hls.levels.length);
      video.play().catch(() => {});
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      const l = hls.levels[data.level];
      box.dataset.level = String(data.level);
      box.dataset.height = String(l ? l.height : "");
      levelEl.textContent = l ? "playing " + l.height + "p" : "";
    });
    // A growing video: a viewer who caught up with the encode waits at the edge. If the browser
    // ended playback there (the media's duration was the edge), play on when the playlist grows;
    // a playlist reload that failed for good is retried while the video is still being made.
    let wantPlay = false, retries = 0;
    video.addEventListener("play", () => { wantPlay = true; });
    video.addEventListener("pause", () => { if (!video.ended) wantPlay = false; });
    hls.on(Hls.Events.LEVEL_UPDATED, () => {
      retries = 0;
      if (wantPlay && video.paused) video.play().catch(() => {});
    });
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR && box.dataset.state !== "complete" && retries < 5) {
        retries += 1;
        setTimeout(() => hls.startLoad(), 2000 * retries);
        return;
      }
      statusEl.textContent = "Playback error: " + data.details; box.dataset.error = data.details;
    });
    hls.loadSource(v.playlist_url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = v.playlist_url;
    video.play().catch(() => {});
  } else {
    statusEl.textContent = "This browser cannot play HLS.";
  }
}

quality.addEventListener("change", () => {
  if (!hls) return;
  const n = Number(quality.value);
  hls.currentLevel = n;  // -1 = automatic
});

function fmtSeconds(s) {
  s = Math.floor(s || 0);
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// A chunked video plays while the rest encodes: say how much is there, keep polling until done.
function growing(v) {
  box.dataset.playable = String(v.playable_seconds || 0);
  statusEl.textContent = v.state === "complete" ? "" :
    "Still processing: " + fmtSeconds(v.playable_seconds) + " of " + fmtSeconds(v.duration) + " available";
}

async function follow() {
  try {
    const v = await api("GET", "/api/gallery/videos/" + encodeURIComponent(id));
    if (!v) return;
    box.dataset.state = v.state;
    growing(v);
    if (v.state === "complete" || v.state === "failed") return;
  } catch (e) { console.error(e); }
  setTimeout(follow, 2000);
}

async function wait() {
  try {
    const v = await api("GET", "/api/gallery/videos/" + encodeURIComponent(id));
    if (!v) return;
    box.dataset.state = v.state;
    if (v.state === "complete" && v.playlist_url) { start(v); return; }
    if (v.playlist_url && v.playable_seconds > 0) { start(v); growing(v); setTimeout(follow, 2000); return; }
    if (v.state === "failed") { location.reload(); return; }  // the server renders what to do
    if (v.retrying) {
      statusEl.textContent = "Waiting to retry: attempt " + v.attempts + " of " + v.max_attempts +
        " failed (" + (v.last_error || "no reason given") + ")";
      box.dataset.state = "retrying";
    } else {
      statusEl.textContent = "Processing… " + v.state + " " + Math.round(v.progress * 100) + " %";
    }
  } catch (e) { statusEl.textContent = e.message; }
  setTimeout(wait, 2000);
}
wait();
