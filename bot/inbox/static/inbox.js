// Keeps the inbox current without a full reload. The server renders every fragment (escaped by
// Jinja), so nothing a consumer wrote is ever run as HTML here. The X-Admin-Poll header tells
// the server that this is the page refreshing itself, not the agent at work, so a page left open
// does not keep a session alive.
(function () {
  "use strict";
  var DRAFT = "bijli-inbox-draft:" + window.location.pathname;

  function fetchPage(url) {
    return fetch(url, { headers: { "X-Admin-Poll": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        // Signed out (redirected to the login page) or gone: show the agent why.
        if (response.redirected || !response.ok) { reload(); return null; }
        return response.text();
      });
  }

  function reload() {
    var draft = document.getElementById("body");
    if (draft && draft.value) { window.sessionStorage.setItem(DRAFT, draft.value); }
    window.location.reload();
  }

  function restoreDraft() {
    var draft = document.getElementById("body");
    var kept = window.sessionStorage.getItem(DRAFT);
    if (draft && kept && !draft.value) { draft.value = kept; }
    window.sessionStorage.removeItem(DRAFT);
  }

  // The conversation page: the message list every 3 seconds.
  function watchConversation(box) {
    var url = box.getAttribute("data-poll");
    var list = function () { return box.querySelector("ol.messages"); };
    var state = list().getAttribute("data-state");
    var holder = list().getAttribute("data-holder");
    var scrollDown = function () { list().scrollTop = list().scrollHeight; };
    scrollDown();
    var form = document.getElementById("reply");
    if (form) { form.addEventListener("submit", function () { window.sessionStorage.removeItem(DRAFT); }); }
    window.setInterval(function () {
      fetchPage(url).then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("ol.messages");
        if (!fresh) { return; }
        if (fresh.getAttribute("data-state") !== state || fresh.getAttribute("data-holder") !== holder) {
          reload();  // taken, closed or timed out elsewhere: the buttons change too
          return;
        }
        if (fresh.innerHTML !== list().innerHTML) { list().replaceWith(fresh); scrollDown(); }
      }).catch(function () { /* offline for a moment: try again next time */ });
    }, 3000);
  }

  // The list page: both tables every 10 seconds.
  function watchList(table) {
    var url = table.getAttribute("data-poll");
    window.setInterval(function () {
      fetchPage(url).then(function (html) {
        if (html === null) { return; }
        var page = new DOMParser().parseFromString(html, "text/html");
        ["open", "closed"].forEach(function (id) {
          var fresh = page.getElementById(id);
          var current = document.getElementById(id);
          if (fresh && current && fresh.innerHTML !== current.innerHTML) { current.innerHTML = fresh.innerHTML; }
        });
      }).catch(function () { /* try again next time */ });
    }, 10000);
  }

  restoreDraft();
  var box = document.getElementById("conversation");
  if (box) { watchConversation(box); }
  var table = document.getElementById("open");
  if (table && table.getAttribute("data-poll")) { watchList(table); }
}());
