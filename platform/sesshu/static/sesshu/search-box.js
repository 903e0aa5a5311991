// The call centre's search box, focused again with the last search in it (no one found, two
// alike, a refusal): its text is selected, so the next words typed replace it rather than
// land in front of it; End keeps it, to add a phone number. (The box has the focus anyway,
// by autofocus: it is given here at once, with the selection.)
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("input[data-select-on-load]");
    if (box && box.value) {
      box.focus();
      box.select();
    }
  });
})();
