/* Click-to-call widget. Include on any page:
 *   <div data-ivr-callback></div>
 *   <script src="https://YOUR-IVR-HOST/callbacks/static/widget.js" async></script>
 * and list the page's origin in the service's CALLBACK_ALLOWED_ORIGINS (its own pages need
 * nothing). Optional attributes on the div: data-ivr-base (the service's URL; default: where
 * this script came from), data-ivr-queue, and data-ivr-no-css (to style it yourself; otherwise
 * widget.css from the same place is added to the page). It shows the number to call, whether
 * the team is open and the expected wait, a form (now, or at a time the visitor chooses) with
 * the consent box, and a confirmation that gives one time: when we will call. When the service
 * asks for a proof of work, the ALTCHA widget (vendored with this file) solves it in the
 * browser while the visitor fills in the form.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var defaultBase = script ? new URL(script.src, location.href).origin : location.origin;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function waitText(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return "less than a minute";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return "about " + minutes + (minutes === 1 ? " minute" : " minutes");
    var hours = Math.round(minutes / 60);
    return "about " + hours + (hours === 1 ? " hour" : " hours");
  }

  function whenText(iso) {
    // One unambiguous time, in the visitor's own time zone: "Wednesday, 2 December, 9:00 AM EST".
    return new Date(iso).toLocaleString([], {
      weekday: "long", day: "numeric", month: "long", hour: "numeric", minute: "2-digit",
      timeZoneName: "short"
    });
  }

  function addStyles(base) {
    var href = base + "/callbacks/static/widget.css";
    if (document.querySelector('link[href="' + href + '"]')) return;
    var link = el("link", { rel: "stylesheet", href: href });
    document.head.appendChild(link);
  }

  function addProofOfWork(base, form, button) {
    // The ALTCHA web component: solves the service's challenge once the form has focus.
    var src = base + "/callbacks/static/vendor/altcha.umd.min.js";
    if (!document.querySelector('script[src="' + src + '"]')) {
      document.head.appendChild(el("script", { src: src, async: "async" }));
    }
    var widget = el("altcha-widget", { challenge: base + "/callbacks/challenge", auto: "onfocus",
                                       name: "altcha", "class": "ivr-cb-proof" });
    form.insertBefore(widget, button);
    var solved = null;
    widget.addEventListener("verified", function (ev) { solved = ev.detail.payload; });
    return {
      payload: function () {
        // A solution is good once: use the one found while typing, or solve one now.
        if (solved) { var p = solved; solved = null; return Promise.resolve(p); }
        return customElements.whenDefined("altcha-widget").then(function () {
          return widget.verify();
        }).then(function (result) { solved = null; return result ? result.payload : null; });
      },
      reset: function () { solved = null; if (widget.reset) widget.reset(); }
    };
  }

  function render(root, base, info) {
    root.textContent = "";
    root.classList.add("ivr-cb");
    var call = el("p", { "class": "ivr-cb-call" }, "Call us free: ");
    var phone = el("a", { "class": "ivr-cb-phone", href: "tel:" + info.phone_number }, info.phone_display);
    call.appendChild(phone);
    root.appendChild(call);
    var wait = el("p", { "class": "ivr-cb-wait" });
    if (!info.open_now && info.opens_at) {
      wait.textContent = "We're closed now. We open again " + whenText(info.opens_at) +
        ": ask for a callback and we'll call you then.";
    } else if (!info.open_now) {
      wait.textContent = "We're closed now. Leave your number and we'll call you when we open.";
    } else if (info.estimated_wait_seconds !== null) {
      wait.textContent = "Or let us call you: expected wait " + waitText(info.estimated_wait_seconds) + ".";
    } else {
      wait.textContent = "Or let us call you back.";
    }
    root.appendChild(wait);

    var form = el("form", { "class": "ivr-cb-form", novalidate: "novalidate" });
    var fields = [["phone", "Your phone number", "tel", true], ["name", "Your name", "text", false],
                  ["reason", "What is it about?", "text", false]];
    fields.forEach(function (f) {
      var label = el("label", {}, f[1] + " ");
      var input = el("input", { name: f[0], type: f[2], autocomplete: f[0] === "phone" ? "tel" : "on" });
      if (f[3]) input.required = true;
      label.appendChild(input);
      form.appendChild(label);
    });
    var when = el("fieldset", { "class": "ivr-cb-when" });
    when.appendChild(el("legend", {}, "When should we call?"));
    var asap = el("input", { type: "radio", name: "when", value: "asap" });
    asap.checked = true;
    var later = el("input", { type: "radio", name: "when", value: "later" });
    var asapLabel = el("label", {}, " As soon as we can");
    asapLabel.prepend(asap);
    var laterLabel = el("label", {}, " At a time I choose");
    laterLabel.prepend(later);
    var atLabel = el("label", { "class": "ivr-cb-at" }, "Date and time (your time) ");
    var at = el("input", { type: "datetime-local", name: "preferred_at" });
    atLabel.appendChild(at);
    atLabel.hidden = true;
    [asap, later].forEach(function (radio) {
      radio.addEventListener("change", function () { atLabel.hidden = !later.checked; });
    });
    when.appendChild(asapLabel);
    when.appendChild(laterLabel);
    when.appendChild(atLabel);
    form.appendChild(when);
    var consent = el("label", { "class": "ivr-cb-consent" });
    var box = el("input", { type: "checkbox", name: "consent" });
    var consentText = el("span", {}, info.consent_text);
    consent.appendChild(box);
    consent.appendChild(consentText);
    form.appendChild(consent);
    var error = el("p", { "class": "ivr-cb-error", role: "alert" });
    form.appendChild(error);
    var button = el("button", { type: "submit" }, "Call me back");
    form.appendChild(button);
    root.appendChild(form);
    var proof = info.proof_of_work ? addProofOfWork(base, form, button) : null;

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      if (!box.checked) {
        error.textContent = "Please tick the box to agree that we may call you.";
        return;
      }
      var preferred = "asap";
      if (later.checked) {
        if (!at.value) {
          error.textContent = "Please choose the date and time you would like us to call.";
          return;
        }
        preferred = new Date(at.value).toISOString();  // the browser's own time zone
      }
      var body = {
        phone: form.phone.value, name: form.name.value, reason: form.reason.value,
        preferred_time: preferred, queue: info.queue, consent: box.checked,
        consent_version: info.consent_version
      };
      button.disabled = true;
      (proof ? proof.payload() : Promise.resolve(null)).then(function (payload) {
        if (payload) body.altcha = payload;
        return fetch(base + "/callbacks", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
        });
      }).then(function (resp) {
        return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
      }).then(function (result) {
        if (!result.ok) {
          button.disabled = false;
          if (proof) proof.reset();
          error.textContent = result.data.message || "Something went wrong.";
          return;
        }
        // The answer holds our id and token; the details are read with the token.
        var made = result.data;
        return fetch(base + "/callbacks/" + encodeURIComponent(made.id), {
          headers: { "X-Callback-Token": made.token }
        }).then(function (r) { return r.json(); }).then(function (details) {
          confirm(root, base, details, made.token, info);
        });
      }).catch(function () {
        button.disabled = false;
        error.textContent = "We couldn't reach our server. Please call us instead.";
      });
    });
  }

  function confirm(root, base, data, token, info) {
    var box = el("div", { "class": "ivr-cb-confirmation", role: "status" });
    var text = "Thank you! We'll call you back at " + data.phone + ".";
    if (data.status === "scheduled" && data.scheduled_for) {
      // One time: when we will call (a place in line means nothing until then).
      var why = {
        closed: " We're closed now, so",
        calling_hours: " It's outside calling hours where you are (" + info.calling_window +
          " your time), so",
        requested: " As you asked,"
      }[data.scheduled_because] || "";
      text += why + " we'll call you on " + whenText(data.scheduled_for) + ".";
    } else {
      if (data.position) text += " You are number " + data.position + " in line.";
      if (data.estimated_wait_seconds !== null && data.estimated_wait_seconds !== undefined) {
        text += " Expected wait: " + waitText(data.estimated_wait_seconds) + ".";
      }
    }
    box.appendChild(el("p", {}, text));
    if (token) {
      var cancel = el("button", { type: "button", "class": "ivr-cb-cancel" }, "Cancel the callback");
      cancel.addEventListener("click", function () {
        fetch(base + "/callbacks/" + encodeURIComponent(data.id) + "/cancel", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: token })
        }).then(function (r) { return r.json(); }).then(function () {
          box.textContent = "";
          box.appendChild(el("p", {}, "Your callback is cancelled. You can still call us at " +
            info.phone_display + "."));
        });
      });
      box.appendChild(cancel);
    }
    var form = root.querySelector(".ivr-cb-form");
    if (form) form.replaceWith(box);
  }

  function mount(root) {
    var base = (root.getAttribute("data-ivr-base") || defaultBase).replace(/\/$/, "");
    if (!root.hasAttribute("data-ivr-no-css")) addStyles(base);
    var queue = root.getAttribute("data-ivr-queue");
    fetch(base + "/callbacks/info" + (queue ? "?queue=" + encodeURIComponent(queue) : ""))
      .then(function (r) { return r.json(); })
      .then(function (info) { render(root, base, info); })
      .catch(function () { root.textContent = "Please call us."; });
  }

  function start() { document.querySelectorAll("[data-ivr-callback]").forEach(mount); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
