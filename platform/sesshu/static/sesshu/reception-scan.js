// Reception: read the confirmation's QR code with the device's camera, where the browser has
// a built-in BarcodeDetector. Optional: without it (or without this file) the same box takes
// a hardware scanner's keystrokes or text pasted from the phone's camera app.
(function () {
  "use strict";
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia) {
    return;
  }

  function attach(form, detector) {
    var input = form.querySelector("input[name=number]");
    if (!input) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = form.dataset.scanStart;
    var status = document.createElement("p");
    status.className = "help";
    status.setAttribute("role", "status");
    var video = document.createElement("video");
    video.setAttribute("playsinline", "");
    video.muted = true;
    video.hidden = true;
    video.width = 320;
    form.appendChild(button);
    form.appendChild(status);
    form.appendChild(video);

    var stream = null;
    var timer = null;

    function stop() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
      video.hidden = true;
      button.textContent = form.dataset.scanStart;
    }

    function look() {
      detector.detect(video).then(function (codes) {
        if (!stream) { return; }
        if (codes.length && codes[0].rawValue) {
          input.value = codes[0].rawValue;
          stop();
          form.submit();
          return;
        }
        timer = setTimeout(look, 250);
      }, function () { timer = setTimeout(look, 500); });
    }

    button.addEventListener("click", function () {
      if (stream) { stop(); input.focus(); return; }
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          video.hidden = false;
          button.textContent = form.dataset.scanStop;
          status.textContent = "";
          return video.play().then(look);
        })
        .catch(function () {
          stop();
          status.textContent = form.dataset.scanFailed;
          input.focus();
        });
    });
    window.addEventListener("pagehide", stop);
  }

  function start() {
    var forms = document.querySelectorAll("form.reception-lookup");
    if (!forms.length) { return; }
    var ready = window.BarcodeDetector.getSupportedFormats
      ? window.BarcodeDetector.getSupportedFormats()
      : Promise.resolve(["qr_code"]);
    ready.then(function (formats) {
      if (formats.indexOf("qr_code") < 0) { return; }
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      forms.forEach(function (form) { attach(form, detector); });
    }, function () {});
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
