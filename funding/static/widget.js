// The campaign widget tells the page that frames it how tall it is, so the embed script
// (embed.js) can size the frame: nothing cropped, whatever the partner's width.
(function () {
  if (window.parent === window) return;
  function tell() {
    window.parent.postMessage({type: "entre-lab-widget", height: document.documentElement.scrollHeight}, "*");
  }
  window.addEventListener("load", tell);
  window.addEventListener("resize", tell);
})();
