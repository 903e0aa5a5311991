// Progressive enhancement only: a page to print works without this.
// Its button opens the print dialog; without the script, the page's hint names the browser's
// own print command instead.
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
