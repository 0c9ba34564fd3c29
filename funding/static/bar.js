// Progressive enhancement of the till: a tap posts its form in the background (no page
// reload on a slow connection) and updates the tab; without JavaScript the form posts as usual.
// Its own words come from the page (data-msg-*), in the page's language.
(function () {
  var till = document.querySelector(".till");
  if (!till || !window.fetch) return;
  var status = till.querySelector("[data-status]");
  var balance = till.querySelector("[data-balance]");
  var lines = till.querySelector("[data-lines]");
  function say(text, ok) {
    status.textContent = text;
    status.className = "till-status " + (ok ? "is-ok" : "is-error");
  }
  till.querySelectorAll("form[data-tap]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      button.setAttribute("aria-busy", "true");
      fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: {"Accept": "application/json", "X-CSRF-Token": till.dataset.csrf}
      }).then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      }).then(function (result) {
        if (!result.ok) { say(result.data.error || till.dataset.msgError, false); return; }
        say(result.data.message, true);
        if (balance && result.data.balance) balance.textContent = result.data.balance;
        if (lines) {
          var empty = lines.querySelector("[data-empty]");
          if (empty) empty.remove();
          var item = document.createElement("li");
          var what = document.createElement("span");
          what.className = "what";
          what.textContent = result.data.line.label + (result.data.line.quantity !== 1 ? " × " + result.data.line.quantity : "");
          var amount = document.createElement("span");
          amount.className = "num";
          amount.textContent = result.data.line.amount;
          item.appendChild(what); item.appendChild(document.createTextNode(" ")); item.appendChild(amount);
          // Its "Annuler" at once, as after a reload.
          var undo = till.querySelector("template[data-undo]");
          if (undo) {
            var form = undo.content.cloneNode(true);
            form.querySelector("input[name=line_id]").value = result.data.line.id;
            var reason = form.querySelector("input[name=reason]"), label = form.querySelector("label[for=reason-new]");
            reason.id = "reason-" + result.data.line.id;
            if (label) label.htmlFor = reason.id;
            item.appendChild(form);
          }
          lines.insertBefore(item, lines.firstChild);
        }
      }).catch(function () {
        // No answer: the line may or may not be recorded. Never tap twice blindly: show the tab as it is.
        say(till.dataset.msgLost, false);
        setTimeout(function () { window.location.reload(); }, 1200);
      }).finally(function () { button.removeAttribute("aria-busy"); });
    });
  });
})();
