// Upload with a real progress bar: XHR's upload.onprogress, streamed as multipart to the server.
"use strict";
const form = document.getElementById("upload-form");
const bar = document.getElementById("progress");
const statusEl = document.getElementById("status");
const button = document.getElementById("upload-button");

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const file = document.getElementById("file").files[0];
  if (!file) { statusEl.textContent = "Choose a file first."; return; }
  const max = Number(form.dataset.max);
  if (max && file.size > max) { statusEl.textContent = "That file is larger than the upload limit."; return; }
  const data = new FormData();
  data.append("title", document.getElementById("title").value);
  data.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/gallery/uploads");
  xhr.setRequestHeader("Accept", "application/json");
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      bar.value = Math.round((e.loaded / e.total) * 100);
      statusEl.textContent = "Uploading… " + bar.value + " %";
    }
  };
  xhr.onload = () => {
    button.disabled = false;
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status === 201) {
      bar.value = 100;
      statusEl.textContent = "Uploaded “" + body.title + "” — it is " + body.state + ".";
      statusEl.dataset.mediaId = body.id;
      setTimeout(() => { location.href = "/"; }, 800);
    } else {
      statusEl.textContent = "Upload refused: " + (body.error || xhr.statusText) + (body.hint ? " — " + body.hint : "");
      statusEl.classList.add("error");
    }
  };
  xhr.onerror = () => { button.disabled = false; statusEl.textContent = "Network error; try again."; };
  bar.hidden = false;
  bar.value = 0;
  button.disabled = true;
  statusEl.classList.remove("error");
  xhr.send(data);
});
