// The agent's page (htmx and its SSE extension do the talking to the server).
// 1. A wrap-up note being typed survives the live part it sits in being replaced (another
//    call ending, a note saved from another tab): the draft is kept per call and put back.
// 2. A presence change the server refused says why, next to the buttons.
// 3. The tab's title says when a call is ringing, so it shows in a background tab.
(function () {
  var drafts = {};
  var baseTitle = document.title;

  function keepDraft(root) {
    root.querySelectorAll("form.note-form textarea").forEach(function (area) {
      var call = area.closest("form").getAttribute("data-call");
      if (call && area.value) drafts[call] = area.value;
    });
  }
  function restoreDraft(root) {
    root.querySelectorAll("form.note-form textarea").forEach(function (area) {
      var call = area.closest("form").getAttribute("data-call");
      if (call && drafts[call] && !area.value) area.value = drafts[call];
    });
  }
  function showTitle() {
    var ringing = document.querySelector("#offer .offer.ringing h2");
    document.title = ringing ? ringing.textContent.trim() + " · IVR console" : baseTitle;
  }

  document.addEventListener("htmx:sseBeforeMessage", function (e) { keepDraft(e.target); });
  document.addEventListener("htmx:sseMessage", function (e) {
    restoreDraft(e.target);
    showTitle();
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.classList && form.classList.contains("note-form")) {
      delete drafts[form.getAttribute("data-call")];  // saved: nothing to put back
    }
  });
  document.addEventListener("htmx:responseError", function (e) {
    var box = document.querySelector(".agent-page .problem");
    if (!box) return;
    var message = "That did not work (" + e.detail.xhr.status + "). Reload the page and try again.";
    try { message = JSON.parse(e.detail.xhr.responseText).message || message; } catch (ignored) {}
    box.textContent = message;
    box.hidden = false;
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var box = document.querySelector(".agent-page .problem");
    if (box && e.detail.successful) box.hidden = true;
  });
  document.addEventListener("DOMContentLoaded", showTitle);
})();
