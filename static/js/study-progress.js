/* Study page: poll the small progress endpoint and update "n of m analysed" until the
 * study is done, then offer the report. Stops polling when the tab is hidden. */
(function () {
  "use strict";
  var box = document.getElementById("study-progress");
  if (!box) return;
  var url = box.getAttribute("data-progress-url");
  var bar = document.getElementById("progress-fill");
  var track = document.getElementById("progress-track");
  var text = document.getElementById("progress-count");
  var status = document.getElementById("study-status");
  var reportLink = document.getElementById("report-link");
  var failure = document.getElementById("study-failure");
  var delay = 1500;
  var timer = null;

  function apply(d) {
    var total = d.total || 0;
    var done = d.analysed || 0;
    var pct = total ? Math.round((done / total) * 100) : 0;
    bar.style.width = pct + "%";
    track.setAttribute("aria-valuenow", String(done));
    track.setAttribute("aria-valuemax", String(total));
    text.textContent = done + " of " + total + " analysed" + (d.failed ? " (" + d.failed + " could not be analysed)" : "");
    status.textContent = d.status_display || d.status;
    status.className = "badge status-" + d.status;
    if (d.error) { failure.hidden = false; failure.querySelector("p").textContent = d.error; }
    if (d.report_url && d.report_ready) {
      reportLink.href = d.report_url;
      reportLink.hidden = false;
    }
    if (d.done) track.classList.add("done");
    return d.done;
  }

  function poll() {
    timer = null;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (d) {
        if (!apply(d)) { schedule(); return; }
        box.setAttribute("data-done", "true");
        refreshSlices();
      })
      .catch(function () { delay = Math.min(delay * 2, 15000); schedule(); });
  }

  // Finished while we watched: fetch the page once more and swap in the per-slice table
  // (a reload could cancel a click on "Open report" made meanwhile).
  function refreshSlices() {
    var panel = document.getElementById("slices-panel");
    if (!panel || !window.DOMParser) return;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("slices-panel");
        if (fresh) panel.innerHTML = fresh.innerHTML;
      })
      .catch(function () { /* the table stays as it was; the counts above are current */ });
  }

  function schedule() {
    if (!document.hidden && !timer) timer = setTimeout(poll, delay);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && box.getAttribute("data-done") !== "true") schedule();
  });
  if (box.getAttribute("data-done") !== "true") schedule();
})();
