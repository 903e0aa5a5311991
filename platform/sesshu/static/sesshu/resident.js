// Progressive enhancement only: every page works without this.
// - The print page: a button opens the print dialog (without it, the browser's print command).
// - A logged-in page: shortly before the idle timeout ends the session, a notice says so and
//   its button starts the timer again (without it, the next page says the session ended).
(function () {
  "use strict";

  function printButton() {
    var button = document.querySelector(".print-button");
    if (!button) { return; }
    button.hidden = false;
    var hint = document.querySelector(".print-hint");
    if (hint) { hint.hidden = true; }
    button.addEventListener("click", function () { window.print(); });
  }

  // Seconds before the earliest end of the session at which the notice shows: the server
  // may have started the idle timer up to a minute before this page loaded, so two minutes
  // are left at least.
  var WARN_BEFORE = 180;

  function idleWarning() {
    var box = document.getElementById("idle-warning");
    if (!box) { return; }
    var idle = parseInt(box.getAttribute("data-idle-seconds"), 10);
    var button = box.querySelector("button");
    if (!idle || !button) { return; }
    var after = Math.max(idle - WARN_BEFORE, idle / 2) * 1000;
    var text = box.querySelector("p");
    var warned = {text: text.textContent, button: button.textContent};
    var timer = null;
    var endTimer = null;
    var ended = false;
    function arm() {
      window.clearTimeout(timer);
      window.clearTimeout(endTimer);
      ended = false;
      text.textContent = warned.text;
      button.textContent = warned.button;
      timer = window.setTimeout(function () {
        box.hidden = false;
        button.focus();
      }, after);
      // The whole idle time gone by: the session has ended on the server too, so the notice
      // no longer offers to continue.
      endTimer = window.setTimeout(function () {
        ended = true;
        text.textContent = box.getAttribute("data-ended-text");
        button.textContent = box.getAttribute("data-ended-button");
      }, idle * 1000);
    }
    button.addEventListener("click", function () {
      if (ended) {
        window.location.reload();  // the page says the session ended, and how to log in
        return;
      }
      var token = document.querySelector("input[name=csrfmiddlewaretoken]");
      window.fetch(box.getAttribute("data-continue"), {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual",
        headers: {"X-CSRFToken": token ? token.value : ""}
      }).then(function (answer) {
        if (answer.status === 204) {
          box.hidden = true;
          arm();
        } else {
          window.location.reload();  // the session has ended: the page says so
        }
      }, function () { window.location.reload(); });
    });
    arm();
  }

  document.addEventListener("DOMContentLoaded", function () {
    printButton();
    idleWarning();
  });
})();
