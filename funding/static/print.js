// "Print or save as PDF" buttons (data-print): no inline script, the CSP allows only our own files.
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});
