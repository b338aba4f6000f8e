// Small helpers for the console's live pages (htmx does the talking to the server).
// 1. Waits tick every second: an element with data-since (epoch seconds on the service's
//    clock) shows how long ago that was, as m:ss. The service's clock is the browser's plus
//    data-clock-offset (on an ancestor; `ivr serve --at` shifts it), so the server never has
//    to send a fragment only because a second passed.
// 2. The live dot shows whether the event stream is connected.
(function () {
  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var host = el.closest("[data-clock-offset]");
      var offset = host ? parseFloat(host.getAttribute("data-clock-offset")) || 0 : 0;
      var text = fmt(Date.now() / 1000 + offset - parseFloat(el.getAttribute("data-since")));
      if (el.textContent !== text) el.textContent = text;
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  document.addEventListener("htmx:sseOpen", function () {
    document.querySelectorAll(".live-dot").forEach(function (d) { d.classList.add("on"); });
  });
  document.addEventListener("htmx:sseError", function () {
    document.querySelectorAll(".live-dot").forEach(function (d) { d.classList.remove("on"); });
  });
})();
