// Progressive enhancement only: the print page works without this (the browser's print
// command); with it, a button opens the print dialog.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector(".print-button");
    if (!button) { return; }
    button.hidden = false;
    var hint = document.querySelector(".print-hint");
    if (hint) { hint.hidden = true; }
    button.addEventListener("click", function () { window.print(); });
  });
})();
