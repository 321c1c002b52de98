// resq dashboard: keep a running job's progress bar live. Polls the page's JSON twin (/api/jobs/ID) every
// 2 s and updates the bar, its percentage, note and time in place (textContent and attributes only: never
// HTML); when the job is no longer running, reloads the page once to show its outcome.
(function () {
  "use strict";
  var panel = document.querySelector("[data-live-job]");
  if (!panel) return;
  var base = document.body.getAttribute("data-base") || "";
  var url = base + "/api/jobs/" + encodeURIComponent(panel.getAttribute("data-live-job"));
  var EVERY_MS = 2000;

  function show(progress) {
    if (!progress) return;
    var bar = document.getElementById("progress-bar");
    var pct = document.getElementById("progress-pct");
    var note = document.getElementById("progress-note");
    var at = document.getElementById("progress-at");
    var percent = String(Math.floor(progress.fraction * 100 + 1e-6)) + "%";
    if (bar) { bar.setAttribute("value", String(progress.fraction)); bar.textContent = percent; }
    if (pct) pct.textContent = percent;
    if (note) note.textContent = progress.note || "";
    if (at && progress.at) at.textContent = "reported " + progress.at.slice(0, 19).replace("T", " ") + " UTC";
  }

  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        var job = data.job || {};
        show(job.progress);
        if (job.status !== "running") { window.location.reload(); return; }
        window.setTimeout(tick, EVERY_MS);
      })
      .catch(function () { window.setTimeout(tick, EVERY_MS); });
  }

  window.setTimeout(tick, EVERY_MS);
})();
