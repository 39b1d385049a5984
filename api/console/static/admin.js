// Admin pages: forms with data-confirm ask before they submit (no inline scripts: CSP).
"use strict";
(function () {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const question = form && form.dataset ? form.dataset.confirm : "";
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
