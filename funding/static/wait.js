// A page that waits on something outside (a walk-in's card payment at the till): every few
// seconds it asks the server again, and only once the answer has changed does it show the new
// state in place, moving the focus to its message. No reload, no meta refresh: nothing moves
// under the reader's eyes or fingers while the state is the same (WCAG 2.2.1, 3.2.5). Without
// JavaScript the page keeps its "Actualiser" link.
(function () {
  "use strict";
  var box = document.querySelector("[data-wait]");
  if (!box || !window.fetch || !window.DOMParser) return;
  var every = parseInt(box.getAttribute("data-wait"), 10) || 4000;
  var until = Date.now() + 30 * 60 * 1000; // Checkout's page expires long before
  function ask() {
    if (Date.now() > until) return;
    fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById(box.id);
        if (!fresh || fresh.getAttribute("data-state") === box.getAttribute("data-state")) {
          window.setTimeout(ask, every);
          return;
        }
        var shown = document.importNode(fresh, true);
        box.replaceWith(shown);
        box = shown;
        var message = shown.querySelector("[role=status]");
        if (message) {
          message.setAttribute("tabindex", "-1");
          message.focus();
        }
        if (shown.hasAttribute("data-wait")) window.setTimeout(ask, every);
      })
      .catch(function () { window.setTimeout(ask, every * 2); });
  }
  window.setTimeout(ask, every);
})();
