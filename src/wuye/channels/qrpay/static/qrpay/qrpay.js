// Poll the order's status every second; when paid, go to the counter's paid page.
(function () {
  "use strict";
  var box = document.getElementById("qr-order");
  if (!box) { return; }
  var url = box.dataset.statusUrl;
  var stateEl = document.getElementById("qr-state");
  var fundEl = document.getElementById("qr-funding");
  var expEl = document.getElementById("qr-expires");
  var msgEl = document.getElementById("qr-message");
  function tick() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        stateEl.dataset.state = d.state;
        if (d.funding_source) { fundEl.textContent = d.funding_source; }
        if (d.expires_in_s) {
          var m = Math.floor(d.expires_in_s / 60), s = d.expires_in_s % 60;
          expEl.textContent = m + ":" + (s < 10 ? "0" : "") + s;
        } else if (d.state === "pending" && d.trade_kind === "native" && d.trade_state === "open" && document.getElementById("qr-image")) {
          window.location.reload();  // the code expired: the page makes a fresh one
          return;
        }
        if (d.message) { msgEl.textContent = d.message; }
        if (d.state === "paid") {
          stateEl.textContent = stateEl.dataset.paidLabel || "✔";
          window.location.assign(d.paid_url);
          return;
        }
        if (d.state !== "cancelled") { window.setTimeout(tick, 1000); }
      })
      .catch(function () { window.setTimeout(tick, 2000); });
  }
  var scan = document.getElementById("qr-scan-form");
  if (scan) {
    // A payment code may wait for the payer's password (USERPAYING): say so, no double submit.
    scan.addEventListener("submit", function () {
      document.getElementById("qr-scan").disabled = true;
      msgEl.textContent = scan.dataset.waiting;
    });
  }
  if (stateEl && stateEl.dataset.state === "pending") { window.setTimeout(tick, 1000); }
})();
