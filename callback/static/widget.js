/* Click-to-call widget. Include on any page:
 *   <div data-ivr-callback data-ivr-lang="bn"></div>
 *   <script src="https://YOUR-IVR-HOST/callbacks/static/widget.js" async></script>
 * and list the page's origin in the service's CALLBACK_ALLOWED_ORIGINS (its own pages need
 * nothing). Optional attributes on the div: data-ivr-lang (or data-lang: a language of the
 * service's flows, e.g. hi, bn, ta, en; default: the page's <html lang>, else the service's
 * default language), data-ivr-base (the service's URL; default: where this script came from),
 * data-ivr-queue, and data-ivr-no-css (to style it yourself; otherwise widget.css from the same
 * place is added to the page). It shows the number to call, whether the team is open and the
 * expected wait, a form (now, or at a time the visitor chooses) with the consent box, and a
 * confirmation that gives one time: when we will call. Every sentence comes from the service's
 * catalogue (GET /callbacks/strings/<lang>, or embedded by the hosted page), numbers and dates
 * are written for the language's locale, and the request carries the language, so the call
 * back speaks it too. When the service asks for a proof of work, the ALTCHA widget (vendored
 * with this file) solves it in the browser while the visitor fills in the form.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var defaultBase = script ? new URL(script.src, location.href).origin : location.origin;
  // The one sentence not from the catalogue: said when the catalogue itself cannot be reached.
  var UNREACHABLE = "Please call us.";
  var SOURCE_LANGUAGE = "en";  // the service's own error messages are written in it
  var FINAL = { completed: 1, failed: 1, cancelled: 1 };
  var FOLLOW_EVERY_MS = 15000;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  // The words of one language: {language, locale, numbers, day_periods, zone, strings}.
  function wordsOf(pack) {
    var strings = pack.strings || {};
    // The digits the service writes this language with (its locale data may be newer than
    // the browser's), e.g. "bn-IN-u-nu-latn".
    var locale = pack.locale ? pack.locale + (pack.numbers ? "-u-nu-" + pack.numbers : "") : [];
    var w = { lang: pack.language, locale: locale };
    w.t = function (key, values) {
      var text = strings[key] || "";
      return text.replace(/\{(\w+)\}/g, function (whole, name) {
        return values && Object.prototype.hasOwnProperty.call(values, name)
          ? String(values[name]) : whole;
      });
    };
    w.has = function (key) { return !!strings[key]; };
    w.number = function (n) {
      try { return new Intl.NumberFormat(w.locale).format(n); } catch (e) { return String(n); }
    };
    w.wait = function (seconds) {
      if (seconds === null || seconds === undefined) return "";
      if (seconds < 60) return w.t("web.wait.under_minute");
      var minutes = Math.round(seconds / 60);
      if (minutes < 60) {
        return minutes === 1 ? w.t("web.wait.minute") : w.t("web.wait.minutes", { n: w.number(minutes) });
      }
      var hours = Math.round(minutes / 60);
      return hours === 1 ? w.t("web.wait.hour") : w.t("web.wait.hours", { n: w.number(hours) });
    };
    w.when = function (iso) {
      // One unambiguous time, in the visitor's own time zone, in the language's own words:
      // "Wednesday, March 11 at 9:00 AM PDT", "বুধবার ১১ মার্চ এ ৯:০০ সকাল ...".
      var options = { weekday: "long", day: "numeric", month: "long", hour: "numeric",
                      minute: "2-digit", timeZoneName: pack.zone || "short" };
      if (pack.day_periods) options.dayPeriod = "short";
      try { return new Date(iso).toLocaleString(w.locale, options); } catch (e) {
        return new Date(iso).toLocaleString();
      }
    };
    return w;
  }

  function errorText(w, data) {
    // The service explains itself in English, in detail; other languages get the catalogue's
    // sentence for the error's code.
    if (w.lang === SOURCE_LANGUAGE && data && data.message) return data.message;
    var key = "web.error." + ((data && data.error) || "generic");
    return w.has(key) ? w.t(key) : w.t("web.error.generic");
  }

  function addStyles(base) {
    var href = base + "/callbacks/static/widget.css";
    if (document.querySelector('link[href="' + href + '"]')) return;
    var link = el("link", { rel: "stylesheet", href: href });
    document.head.appendChild(link);
  }

  function altchaStrings(w) {
    var brand = '<a href="https://altcha.org/" tabindex="-1" target="_blank" ' +
      'aria-label="Altcha (official website)">ALTCHA</a>';
    var parts = w.t("web.proof.footer").split("{brand}").map(function (part) {
      var span = document.createElement("span");
      span.textContent = part;
      return span.innerHTML;
    });
    return {
      label: w.t("web.proof.label"), loading: w.t("web.proof.loading"),
      verifying: w.t("web.proof.verifying"), waitAlert: w.t("web.proof.wait"),
      verified: w.t("web.proof.verified"), verificationRequired: w.t("web.proof.required"),
      error: w.t("web.proof.error"), expired: w.t("web.proof.expired"),
      footer: parts.join(brand)
    };
  }

  function addProofOfWork(base, form, button, w) {
    // The ALTCHA web component: solves the service's challenge once the form has focus.
    var src = base + "/callbacks/static/vendor/altcha.umd.min.js";
    if (!document.querySelector('script[src="' + src + '"]')) {
      document.head.appendChild(el("script", { src: src, async: "async" }));
    }
    var widget = el("altcha-widget", { challenge: base + "/callbacks/challenge", auto: "onfocus",
                                       name: "altcha", "class": "ivr-cb-proof",
                                       language: w.lang });
    form.insertBefore(widget, button);
    customElements.whenDefined("altcha-widget").then(function () {
      // Its own words in our language (its script defines $altcha, with English built in).
      var i18n = window.$altcha && window.$altcha.i18n;
      if (i18n) i18n.set(w.lang, Object.assign({}, i18n.get("en"), altchaStrings(w)));
    });
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

  function render(root, base, info, w) {
    root.textContent = "";
    root.classList.add("ivr-cb");
    root.setAttribute("lang", w.lang);
    var call = el("p", { "class": "ivr-cb-call" }, w.t("web.call_free") + " ");
    var phone = el("a", { "class": "ivr-cb-phone", href: "tel:" + info.phone_number }, info.phone_display);
    call.appendChild(phone);
    root.appendChild(call);
    var wait = el("p", { "class": "ivr-cb-wait" });
    if (!info.open_now && info.opens_at) {
      wait.textContent = w.t("web.closed_until", { when: w.when(info.opens_at) });
    } else if (!info.open_now) {
      wait.textContent = w.t("web.closed");
    } else if (info.estimated_wait_seconds !== null) {
      wait.textContent = w.t("web.wait", { wait: w.wait(info.estimated_wait_seconds) });
    } else {
      wait.textContent = w.t("web.offer");
    }
    root.appendChild(wait);

    var form = el("form", { "class": "ivr-cb-form", novalidate: "novalidate" });
    var fields = [["phone", "web.phone_label", "tel", true], ["name", "web.name_label", "text", false],
                  ["reason", "web.reason_label", "text", false]];
    fields.forEach(function (f) {
      var label = el("label", {}, w.t(f[1]) + " ");
      var input = el("input", { name: f[0], type: f[2], autocomplete: f[0] === "phone" ? "tel" : "on" });
      if (f[3]) input.required = true;
      label.appendChild(input);
      form.appendChild(label);
    });
    var when = el("fieldset", { "class": "ivr-cb-when" });
    when.appendChild(el("legend", {}, w.t("web.when_legend")));
    var asap = el("input", { type: "radio", name: "when", value: "asap" });
    asap.checked = true;
    var later = el("input", { type: "radio", name: "when", value: "later" });
    var asapLabel = el("label", {}, " " + w.t("web.asap"));
    asapLabel.prepend(asap);
    var laterLabel = el("label", {}, " " + w.t("web.later"));
    laterLabel.prepend(later);
    var atLabel = el("label", { "class": "ivr-cb-at" }, w.t("web.at_label") + " ");
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
    var button = el("button", { type: "submit" }, w.t("web.submit"));
    form.appendChild(button);
    root.appendChild(form);
    var proof = info.proof_of_work ? addProofOfWork(base, form, button, w) : null;

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      if (!box.checked) {
        error.textContent = w.t("web.error.unticked");
        return;
      }
      var preferred = "asap";
      if (later.checked) {
        if (!at.value) {
          error.textContent = w.t("web.error.no_time");
          return;
        }
        preferred = new Date(at.value).toISOString();  // the browser's own time zone
      }
      var body = {
        phone: form.phone.value, name: form.name.value, reason: form.reason.value,
        preferred_time: preferred, queue: info.queue, consent: box.checked,
        consent_version: info.consent_version, language: w.lang
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
          error.textContent = errorText(w, result.data);
          return;
        }
        // The answer holds our id and token; the details are read with the token.
        var made = result.data;
        return fetch(base + "/callbacks/" + encodeURIComponent(made.id), {
          headers: { "X-Callback-Token": made.token }
        }).then(function (r) { return r.json(); }).then(function (details) {
          confirm(root, base, details, made.token, info, w);
        });
      }).catch(function () {
        button.disabled = false;
        error.textContent = w.t("web.error.network");
      });
    });
  }

  function summary(data, info, w) {
    var text = w.t("web.thanks", { phone: data.phone });
    if (data.status === "scheduled" && data.scheduled_for) {
      // One time: when we will call (a place in line means nothing until then).
      var key = {
        closed: "web.scheduled.closed", calling_hours: "web.scheduled.calling_hours",
        requested: "web.scheduled.requested", retry: "web.scheduled.retry"
      }[data.scheduled_because] || "web.scheduled.other";
      return text + " " + w.t(key, { when: w.when(data.scheduled_for), window: info.calling_window });
    }
    if (data.position) text += " " + w.t("web.position", { position: w.number(data.position) });
    if (data.estimated_wait_seconds !== null && data.estimated_wait_seconds !== undefined) {
      text += " " + w.t("web.expected_wait", { wait: w.wait(data.estimated_wait_seconds) });
    }
    return text;
  }

  function confirm(root, base, data, token, info, w) {
    var box = el("div", { "class": "ivr-cb-confirmation", role: "status" });
    box.appendChild(el("p", {}, summary(data, info, w)));
    var status = el("p", { "class": "ivr-cb-status" });
    var problem = el("p", { "class": "ivr-cb-problem" });
    function show(details) {
      status.textContent = w.t("web.status_line", { status: w.t("web.status." + details.status) });
      problem.textContent = details.problem || "";
      problem.hidden = !details.problem;
    }
    show(data);
    box.appendChild(status);
    box.appendChild(problem);
    if (token) {
      var cancel = el("button", { type: "button", "class": "ivr-cb-cancel" }, w.t("web.cancel"));
      cancel.addEventListener("click", function () {
        fetch(base + "/callbacks/" + encodeURIComponent(data.id) + "/cancel", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: token })
        }).then(function (r) { return r.json(); }).then(function () {
          token = null;
          box.textContent = "";
          box.appendChild(el("p", {}, w.t("web.cancelled", { phone: info.phone_display })));
        });
      });
      box.appendChild(cancel);
      // Follow the request while the page is open: "calling you now", then "done".
      var follow = function () {
        if (!token) return;
        fetch(base + "/callbacks/" + encodeURIComponent(data.id), {
          headers: { "X-Callback-Token": token }
        }).then(function (r) { return r.ok ? r.json() : null; }).then(function (details) {
          if (!details || !token) return;
          show(details);
          if (!FINAL[details.status]) setTimeout(follow, FOLLOW_EVERY_MS);
        }, function () { setTimeout(follow, FOLLOW_EVERY_MS); });
      };
      if (!FINAL[data.status]) setTimeout(follow, FOLLOW_EVERY_MS);
    }
    var form = root.querySelector(".ivr-cb-form");
    if (form) form.replaceWith(box);
  }

  function loadWords(base, lang) {
    // The hosted page embeds its words; an embed on a shop's page asks for them.
    var embedded = document.getElementById("ivr-cb-strings");
    if (embedded) {
      try {
        var pack = JSON.parse(embedded.textContent);
        if (!lang || pack.language === lang) return Promise.resolve(pack);
      } catch (e) { /* ask the service instead */ }
    }
    var url = base + "/callbacks/strings" + (lang ? "/" + encodeURIComponent(lang) : "");
    return fetch(url).then(function (r) {
      if (!r.ok) throw new Error("strings " + r.status);
      return r.json();
    });
  }

  function mount(root) {
    var base = (root.getAttribute("data-ivr-base") || defaultBase).replace(/\/$/, "");
    if (!root.hasAttribute("data-ivr-no-css")) addStyles(base);
    var lang = root.getAttribute("data-ivr-lang") || root.getAttribute("data-lang") ||
      document.documentElement.lang || "";
    var queue = root.getAttribute("data-ivr-queue");
    var query = [];
    if (queue) query.push("queue=" + encodeURIComponent(queue));
    if (lang) query.push("lang=" + encodeURIComponent(lang));
    var words = loadWords(base, lang);
    var info = fetch(base + "/callbacks/info" + (query.length ? "?" + query.join("&") : ""))
      .then(function (r) { return r.json(); });
    Promise.all([words, info])
      .then(function (both) { render(root, base, both[1], wordsOf(both[0])); })
      .catch(function () {
        words.then(function (pack) { root.textContent = wordsOf(pack).t("web.unavailable"); },
                   function () { root.textContent = UNREACHABLE; });
      });
  }

  function start() { document.querySelectorAll("[data-ivr-callback]").forEach(mount); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
