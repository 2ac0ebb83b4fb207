// Signature pad for consent forms (no inline script: CSP is script-src 'self').
// Draws on <canvas id="signature-pad" data-target="ID">, writes a PNG data URL into the hidden
// input ID on every stroke end, and clears both on #signature-clear. Also wires #print-button.
(function () {
  "use strict";

  function setup() {
    var printButton = document.getElementById("print-button");
    if (printButton) {
      printButton.addEventListener("click", function () { window.print(); });
    }
    var canvas = document.getElementById("signature-pad");
    if (!canvas) { return; }
    var target = document.getElementById(canvas.getAttribute("data-target"));
    var ctx = canvas.getContext("2d");
    var drawing = false;
    var inked = false;
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#000";

    function point(event) {
      var rect = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - rect.left) * (canvas.width / rect.width),
        y: (event.clientY - rect.top) * (canvas.height / rect.height)
      };
    }
    function start(event) {
      drawing = true;
      var p = point(event);
      ctx.beginPath();
      ctx.moveTo(p.x, p.y);
      ctx.lineTo(p.x + 0.1, p.y + 0.1);
      ctx.stroke();
      inked = true;
      if (canvas.setPointerCapture && event.pointerId !== undefined) {
        canvas.setPointerCapture(event.pointerId);
      }
      event.preventDefault();
    }
    function move(event) {
      if (!drawing) { return; }
      var p = point(event);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      event.preventDefault();
    }
    function end() {
      if (!drawing) { return; }
      drawing = false;
      if (inked && target) { target.value = canvas.toDataURL("image/png"); }
    }
    canvas.addEventListener("pointerdown", start);
    canvas.addEventListener("pointermove", move);
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointerleave", end);
    canvas.addEventListener("pointercancel", end);

    var clear = document.getElementById("signature-clear");
    if (clear) {
      clear.addEventListener("click", function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        inked = false;
        if (target) { target.value = ""; }
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
}());
