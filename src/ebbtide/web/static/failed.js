// A failed video's page: the only action needing a script is deleting it.
"use strict";
document.getElementById("delete-failed").addEventListener("click", async () => {
  const id = document.getElementById("failed").dataset.id;
  if (!confirm("Delete this video?")) return;
  try { await api("DELETE", "/api/gallery/videos/" + encodeURIComponent(id)); location.href = "/"; }
  catch (e) { alert(e.message); }
});
