// On a partner's page, beside the widget's <iframe>: sizes each of our widgets to the height
// it reports. Only messages from this script's own origin are heard.
(function () {
  var script = document.currentScript;
  if (!script || !window.postMessage) return;
  var origin = new URL(script.src).origin;
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || !event.data || event.data.type !== "entre-lab-widget") return;
    var height = Math.ceil(Number(event.data.height));
    if (!(height > 0 && height < 2000)) return;
    document.querySelectorAll("iframe").forEach(function (frame) {
      if (frame.contentWindow === event.source) frame.style.height = height + "px";
    });
  });
})();
