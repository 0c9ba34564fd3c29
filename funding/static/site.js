// Feedback where the eye is: a page that answers with an error (role="alert") or a message
// marked data-focus ("Paiement annulé") moves the focus to it, which scrolls it into view:
// on a phone the form's error is otherwise far below the top of the page.
(function () {
  var message = document.querySelector("main [role=alert], main [data-focus]");
  if (!message) return;
  if (!message.hasAttribute("tabindex")) message.setAttribute("tabindex", "-1");
  message.focus();
})();
