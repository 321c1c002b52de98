// resq dashboard: keep the overview live. Polls the page's JSON twin (/api/stats) every 2 s and updates the
// numbers, the queue table and the chart in place (textContent and attributes only: never HTML).
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base") || "";
  var EVERY_MS = 2000;

  function pick(data, path) {
    return path.split(".").reduce(function (value, key) {
      return value == null ? undefined : value[key];
    }, data);
  }

  function setStats(data) {
    document.querySelectorAll("[data-stat]").forEach(function (el) {
      var value = pick(data, el.getAttribute("data-stat"));
      if (value !== undefined) el.textContent = String(value);
    });
  }

  function setQueues(queues) {
    queues.forEach(function (q) {
      var row = document.querySelector('tr[data-queue="' + CSS.escape(q.name) + '"]');
      if (!row) return;
      var values = { waiting: q.waiting, running: q.running, oldest: q.shown.oldest, wait_p50: q.shown.wait_p50,
                     wait_p99: q.shown.wait_p99, scheduled: q.scheduled, workers: q.workers };
      Object.keys(values).forEach(function (field) {
        var cell = row.querySelector('[data-field="' + field + '"]');
        if (cell) cell.textContent = String(values[field]);
      });
      var dead = row.querySelector('[data-field="dead"]');
      if (dead) {
        var link = dead.querySelector("a");
        (link || dead).textContent = String(q.dead);
      }
    });
  }

  function setChart(chart) {
    var processed = document.getElementById("chart-processed");
    var failed = document.getElementById("chart-failed");
    var top = document.getElementById("chart-max");
    var mid = document.getElementById("chart-mid");
    if (processed) processed.setAttribute("points", chart.processed);
    if (failed) failed.setAttribute("points", chart.failed);
    if (top) top.textContent = String(chart.max);
    if (mid) mid.textContent = String(chart.max / 2);
  }

  function stamp(ok, data) {
    var el = document.getElementById("updated");
    if (!el) return;
    el.classList.toggle("stale", !ok);
    el.textContent = ok ? "updated " + data.at.slice(11, 19) : "not updated (no answer): retrying";
  }

  function tick() {
    fetch(base + "/api/stats", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        setStats(data);
        setQueues(data.queues || []);
        setChart(data.chart);
        stamp(true, data);
      })
      .catch(function () { stamp(false, null); })
      .finally(function () { window.setTimeout(tick, EVERY_MS); });
  }

  window.setTimeout(tick, EVERY_MS);
})();
