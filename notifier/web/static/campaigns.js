// Keeps a running campaign's figures current without a reload. The server renders the block
// (escaped by Jinja); the X-Admin-Poll header says this is the page refreshing itself, not the
// operator at work, so a page left open does not keep a session alive.
(function () {
  "use strict";
  var box = document.getElementById("live-box");
  if (!box || !box.getAttribute("data-poll")) { return; }
  var url = box.getAttribute("data-poll");
  window.setInterval(function () {
    fetch(url, { headers: { "X-Admin-Poll": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected || !response.ok) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        var current = document.getElementById("live");
        if (!fresh || !current) { return; }
        if (fresh.getAttribute("data-state") !== current.getAttribute("data-state")) {
          window.location.reload();  // started, paused or finished: the buttons change too
          return;
        }
        if (fresh.innerHTML !== current.innerHTML) { current.replaceWith(fresh); }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }, 5000);
})();
