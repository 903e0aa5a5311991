// Progressive enhancement only: every page works without this.
// - A logged-in page: shortly before the idle timeout ends the session, a notice says so and
//   its button starts the timer again (without it, the next page says the session ended).
(function () {
  "use strict";

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
    var text = box.querySelector("p");
    var warned = {text: text.textContent, button: button.textContent};
    var timer = null;
    var ended = false;
    // How long the session has left, as the server counts it (another tab's pages may have
    // kept it alive): calls back with the seconds, or 0 when it has ended.
    function askLeft(then) {
      window.fetch(box.getAttribute("data-left"), {
        credentials: "same-origin",
        redirect: "manual",
        cache: "no-store"
      }).then(function (answer) {
        if (answer.status !== 200) { then(0); return; }
        answer.json().then(function (body) { then(body.seconds || 0); },
                           function () { then(0); });
      }, function () { then(-1); });  // unreachable: keep counting by this page's clock
    }
    function showWarning() {
      ended = false;
      text.textContent = warned.text;
      button.textContent = warned.button;
      box.hidden = false;
      button.focus();
    }
    function showEnded() {
      ended = true;
      text.textContent = box.getAttribute("data-ended-text");
      button.textContent = box.getAttribute("data-ended-button");
      box.hidden = false;
    }
    // Wait ``seconds`` (what this page believes is left), then ask the server: warn when
    // little is left, say it ended when it has, and otherwise wait for what it says is left.
    function arm(seconds) {
      window.clearTimeout(timer);
      var wait = Math.max(seconds - WARN_BEFORE, Math.min(seconds, idle / 2));
      timer = window.setTimeout(function () {
        askLeft(function (left) {
          if (left === -1) { left = seconds - wait; }
          if (left <= 0) {
            showEnded();
          } else if (left <= WARN_BEFORE) {
            showWarning();
            timer = window.setTimeout(function () { arm(0.1); }, left * 1000);
          } else {
            box.hidden = true;
            arm(left);
          }
        });
      }, wait * 1000);
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
          arm(idle);
        } else {
          window.location.reload();  // the session has ended: the page says so
        }
      }, function () { window.location.reload(); });
    });
    arm(idle);
  }

  document.addEventListener("DOMContentLoaded", function () {
    idleWarning();
  });
})();
