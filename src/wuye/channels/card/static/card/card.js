// The card page follows its order: poll the JSON status, show it, go to the receipt when paid.
(function () {
  "use strict";
  var box = document.getElementById("card-order");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var state = document.getElementById("card-state");
  var message = document.getElementById("card-message");
  var tid = document.getElementById("card-tid");
  var retry = document.getElementById("card-retry");
  var cancel = document.getElementById("card-cancel");
  var final = { paid: true, cancelled: false };
  function show(s) {
    state.textContent = s.label;
    state.setAttribute("data-state", s.state);
    message.textContent = s.message || "";
    if (s.tid) { tid.textContent = s.tid; }
    retry.hidden = !s.can_retry;
    cancel.hidden = !s.can_cancel;
    if (s.paid_url) { window.location.assign(s.paid_url); return true; }
    return s.state in final;
  }
  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (!(s && show(s))) { window.setTimeout(poll, 1000); } })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
