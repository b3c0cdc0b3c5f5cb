// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // What this file adds to a part of the page: dress shows what needs the script and labels table
  // cells (attributes only, so a page updated in place can be dressed before it is compared);
  // bind adds the behaviour, once per element.
  var bound = new WeakSet();
  var once = function (el) { if (bound.has(el)) return false; bound.add(el); return true; };
  // Copy buttons: <button data-copy="element-id"> beside a .copy-status line. The target stays
  // selectable text without JavaScript. Where the clipboard is refused (a page not served over
  // HTTPS, a browser policy), the text is selected and the button says which keys copy it.
  var copyKeys = /Mac|iPhone|iPad/.test(navigator.platform || "") ? "\u2318C" : "Ctrl+C";
  var dress = function (root) {
    root.querySelectorAll("button[data-copy]").forEach(function (btn) { btn.hidden = false; });
    root.querySelectorAll("[data-select]").forEach(function (btn) {
      var buttons = btn.closest(".select-buttons");
      if (btn.closest("form") && buttons) buttons.hidden = false;
    });
    var toggle = root.querySelector("#auto-refresh");
    if (toggle && window.fetch && window.DOMParser) toggle.closest("label").hidden = false;
    // Tables: every cell carries its column's heading (data-label) and the status column's mark
    // (data-col), for the stacked layout phones get from app.css.
    root.querySelectorAll(".table-wrap table").forEach(function (table) {
      var heads = table.querySelectorAll("thead th");
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        if (tr.children.length !== heads.length) return;
        Array.prototype.forEach.call(tr.children, function (td, i) {
          var th = heads[i];
          if (!td.hasAttribute("data-label")) td.setAttribute("data-label", th.textContent.trim());
          if (th.hasAttribute("data-col")) td.setAttribute("data-col", th.getAttribute("data-col"));
          if (td.textContent.trim() === "" && !td.querySelector("input, select, button, img")) td.setAttribute("data-empty", "");
        });
      });
    });
  };
  var bind = function (root) {
    root.querySelectorAll("button[data-copy]").forEach(function (btn) {
      if (!once(btn)) return;
      var label = btn.textContent, timer = null;
      var status = btn.parentNode.querySelector(".copy-status");
      var say = function (buttonText, words) {
        btn.textContent = buttonText;
        if (status) status.textContent = words;
        clearTimeout(timer);
        timer = setTimeout(function () { btn.textContent = label; if (status) status.textContent = ""; }, 4000);
      };
      var selectText = function (target) {
        target.focus();
        var range = document.createRange();
        range.selectNodeContents(target);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      };
      var fallback = function (target) {
        selectText(target);
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
        if (copied) { say("Copied", "Copied to the clipboard."); return; }
        say("Press " + copyKeys, "The text is selected: press " + copyKeys + " to copy it.");
      };
      btn.addEventListener("click", function () {
        var target = document.getElementById(btn.getAttribute("data-copy"));
        if (!target) return;
        if (!navigator.clipboard || !navigator.clipboard.writeText) { fallback(target); return; }
        navigator.clipboard.writeText(target.textContent).then(function () {
          say("Copied", "Copied to the clipboard.");
        }, function () { fallback(target); });
      });
    });
    // The create form's date: as it is typed, say exactly what will be sent (the same forms as
    // handlers/uploadform.go reads; the server's answer is the one that counts).
    var typedDateTime = /^(\d{4})[-\/](\d{1,2})[-\/](\d{1,2})(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,7})?)?)?\s*([Zz]|UTC|utc|[+-]\d{2}:?\d{2})?$/;
    var pad = function (s) { return s.length < 2 ? "0" + s : s; };
    var graphDateTime = function (typed) {
      var m = typedDateTime.exec(typed.trim());
      if (!m) return null;
      var y = +m[1], mo = +m[2], d = +m[3], hh = m[4] ? pad(m[4]) : "00", mm = m[4] ? m[5] : "00", ss = m[6] || "00";
      var day = new Date(Date.UTC(y, mo - 1, d));
      if (mo < 1 || mo > 12 || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || +hh > 23 || +mm > 59 || +ss > 59) return null;
      var off = m[8] || "", assumed = off === "";
      if (off === "" || /^(z|utc)$/i.test(off)) { off = "Z"; } else {
        if (off.length === 5) off = off.slice(0, 3) + ":" + off.slice(3);
        if (off.slice(1) > "14:00" || +off.slice(4) > 59) return null;
      }
      return { sent: m[1] + "-" + pad(m[2]) + "-" + pad(m[3]) + "T" + hh + ":" + mm + ":" + ss + (m[7] || "") + off, assumedUTC: assumed };
    };
    root.querySelectorAll("[data-sends-for]").forEach(function (out) {
      if (!once(out)) return;
      var input = document.getElementById(out.getAttribute("data-sends-for"));
      if (!input) return;
      var show = function () {
        var r = graphDateTime(input.value);
        out.textContent = "";
        if (!r) {
          if (input.value.trim() !== "") out.textContent = "Not a date the desk can read yet: type it like 2026-11-29 or 2026/11/29 14:30.";
          return;
        }
        var code = document.createElement("code");
        code.textContent = r.sent;
        out.append("Sends ", code, r.assumedUTC ? " (no offset typed: taken as UTC)" : "");
      };
      input.addEventListener("input", show);
    });
    // Forms marked data-once disable their submit button after the first submit (the server also refuses repeats).
    root.querySelectorAll("form[data-once]").forEach(function (form) {
      if (!once(form)) return;
      form.addEventListener("submit", function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) {
          b.setAttribute("aria-disabled", "true");
          b.addEventListener("click", function (e) { e.preventDefault(); });
        });
      });
    });
    // "Select all" and "Select none" buttons tick or clear every checkbox of their form named by
    // data-select-name (the devices of a list by default; "leaveOut" on an import's pre-flight).
    root.querySelectorAll("[data-select]").forEach(function (btn) {
      var form = btn.closest("form");
      if (!form || !once(btn)) return;
      var name = btn.getAttribute("data-select-name") || "device";
      btn.addEventListener("click", function () {
        var on = btn.getAttribute("data-select") === "all";
        form.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) { box.checked = on; });
        form.dispatchEvent(new Event("change"));
      });
    });
    // An import's pre-flight: the import button and the summary say how many devices will be sent
    // as "Leave out" ticks change (the server renders the same count for the ticks it sends).
    root.querySelectorAll("button[data-import-button]").forEach(function (btn) {
      var form = btn.closest("form");
      if (!form || !once(btn)) return;
      var devices = function (n) { return n.toLocaleString("en-GB") + (n === 1 ? " device" : " devices"); };
      var recount = function () {
        var boxes = form.querySelectorAll('input[type=checkbox][name="leaveOut"]'), out = 0;
        boxes.forEach(function (b) { if (b.checked) out++; });
        var send = boxes.length - out;
        btn.textContent = send === 0 ? "Nothing to import: every ready row is left out" : "Import " + devices(send);
        btn.disabled = send === 0;
        document.querySelectorAll("[data-import-count]").forEach(function (el) { el.textContent = devices(send); });
        document.querySelectorAll("[data-summary-tail]").forEach(function (el) {
          var invalid = parseInt(el.getAttribute("data-summary-tail"), 10) || 0;
          var left = out + (parseInt(el.getAttribute("data-left-out-base"), 10) || 0);
          el.textContent = (left > 0 ? ", " + left.toLocaleString("en-GB") + " left out" : "") +
            (invalid > 0 ? ", " + invalid.toLocaleString("en-GB") + (invalid === 1 ? " row" : " rows") + " with problems" : "") + ".";
        });
      };
      form.addEventListener("change", recount);
    });
    // A select marked data-action-fields shows only the fields of the change chosen (data-for-action);
    // without this file every field shows and says which change it is for.
    root.querySelectorAll("select[data-action-fields]").forEach(function (select) {
      if (!select.form || !once(select)) return;
      var show = function () {
        select.form.querySelectorAll("[data-for-action]").forEach(function (el) {
          el.hidden = el.getAttribute("data-for-action") !== select.value;
        });
      };
      select.addEventListener("change", show);
      show();
    });
  };
  dress(document);
  bind(document);
  // Pages marked data-refresh-seconds are brought up to date in place while work is in progress:
  // the page is fetched again and only what changed is replaced, so focus, the reading position and
  // an open panel stay where they were, and a screen reader hears the page's own polite status
  // lines. A person turns it off with #auto-refresh; typing into a form on the page pauses it.
  // Without this file the page offers a "Refresh now" link.
  var main = document.getElementById("main");
  if (main && main.querySelector("[data-refresh-seconds]") && window.fetch && window.DOMParser) {
    var timer = null, on = true, typed = false;
    var announcer = document.createElement("div");
    announcer.className = "visually-hidden";
    announcer.setAttribute("role", "status");
    announcer.setAttribute("aria-live", "polite");
    document.body.appendChild(announcer);
    var textOf = function (el) { return el ? el.textContent.replace(/\s+/g, " ").trim() : ""; };
    var seconds = function () {
      var el = main.querySelector("[data-refresh-seconds]");
      return el ? parseInt(el.getAttribute("data-refresh-seconds"), 10) || 0 : 0;
    };
    var schedule = function () {
      clearTimeout(timer);
      var s = seconds();
      if (on && s > 0) timer = setTimeout(update, s * 1000);
    };
    // pause stops the updates and says why beside the switch, which turns them on again; link,
    // when given, is the way on ({href, text}).
    var pause = function (words, link) {
      on = false;
      clearTimeout(timer);
      var toggle = document.getElementById("auto-refresh");
      if (toggle) toggle.checked = false;
      var line = main.querySelector("[data-refresh-seconds]");
      if (!line) return;
      var note = line.querySelector(".refresh-note");
      if (!note) { note = document.createElement("span"); note.className = "refresh-note"; line.appendChild(note); }
      note.textContent = words;
      if (link) {
        var a = document.createElement("a");
        a.href = link.href;
        a.textContent = link.text;
        note.appendChild(document.createTextNode(" "));
        note.appendChild(a);
      }
      announcer.textContent = words;
    };
    // signedOut says the session ended (the page's address was answered with the sign-in page)
    // and offers to sign in again, back to this page.
    var signedOut = function () {
      pause("You were signed out (your session ended), so this page stopped updating.",
        { href: "/auth/signin?return_to=" + encodeURIComponent(location.pathname + location.search), text: "Sign in again" });
    };
    var isSignIn = function (res) {
      try { return /^\/auth\/(signin|login)$/.test(new URL(res.url).pathname); } catch (e) { return false; }
    };
    var keyOf = function (el) {
      if (el.id) return "#" + el.id;
      var form = el.closest("form");
      return [el.nodeName, el.getAttribute("href"), el.getAttribute("name"), el.getAttribute("value"),
        form && form.getAttribute("action"), textOf(el)].join("\n");
    };
    var sameKind = function (a, b) {
      if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) return false;
      return a.nodeType !== 1 || (a.id === b.id && a.getAttribute("data-testid") === b.getAttribute("data-testid"));
    };
    // What the person or this script set stays: a panel opened, the heading made focusable.
    var madeFocusable = new WeakSet();
    var keepsOwn = function (el, name) {
      return (name === "open" && el.nodeName === "DETAILS") || (name === "tabindex" && madeFocusable.has(el));
    };
    var syncAttributes = function (cur, next) {
      Array.prototype.slice.call(cur.attributes).forEach(function (a) {
        if (!next.hasAttribute(a.name) && !keepsOwn(cur, a.name)) cur.removeAttribute(a.name);
      });
      Array.prototype.forEach.call(next.attributes, function (a) {
        if (!keepsOwn(cur, a.name) && cur.getAttribute(a.name) !== a.value) cur.setAttribute(a.name, a.value);
      });
    };
    // patch makes cur read like next and keeps every node whose place did not change: the same
    // leading and trailing children are patched in turn, the ones between replaced. It reports
    // whether the focused element was kept.
    var patch = function (cur, next) {
      syncAttributes(cur, next);
      var a = Array.prototype.slice.call(cur.childNodes), b = Array.prototype.slice.call(next.childNodes);
      var head = 0, tail = 0, kept = true;
      while (head < a.length && head < b.length && sameKind(a[head], b[head])) head++;
      while (tail < a.length - head && tail < b.length - head && sameKind(a[a.length - 1 - tail], b[b.length - 1 - tail])) tail++;
      var before = a[a.length - tail] || null;
      a.slice(head, a.length - tail).forEach(function (n) {
        if (n.contains(document.activeElement)) kept = false;
        cur.removeChild(n);
      });
      b.slice(head, b.length - tail).forEach(function (n) { cur.insertBefore(n, before); });
      var same = function (x, y) {
        if (x.nodeType === 1) { if (!patch(x, y)) kept = false; } else if (x.nodeValue !== y.nodeValue) { x.nodeValue = y.nodeValue; }
      };
      for (var i = 0; i < head; i++) same(a[i], b[i]);
      for (var t = 0; t < tail; t++) same(a[a.length - 1 - t], b[b.length - 1 - t]);
      return kept;
    };
    var update = function () {
      if (!on) return;
      if (typed) { pause("Updates are paused while you fill in a form on this page. Refresh now shows the latest."); return; }
      fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } }).then(function (res) {
        if (res.redirected && isSignIn(res)) return null;
        if (!res.ok || res.redirected) throw new Error("status " + res.status);
        return res.text();
      }).then(function (html) {
        if (html === null) { signedOut(); return; }
        if (!on) return;
        if (typed) { update(); return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("main");
        if (!next) throw new Error("no main");
        dress(next);
        var focused = document.activeElement;
        var key = focused && focused !== main && main.contains(focused) ? keyOf(focused) : null;
        var heading = textOf(main.querySelector("h1"));
        var kept = patch(main, next);
        bind(main);
        if (doc.title) document.title = doc.title;
        if (key && !kept) {
          // The focused control went with the part that changed: its twin takes the focus, or else
          // the page's heading, so the keyboard goes on from where the person was reading.
          var twin = Array.prototype.find.call(main.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]"),
            function (el) { return keyOf(el) === key; });
          var h1 = main.querySelector("h1");
          if (!twin && h1) { h1.setAttribute("tabindex", "-1"); madeFocusable.add(h1); twin = h1; }
          if (twin) twin.focus({ preventScroll: true });
        }
        var now = textOf(main.querySelector("h1"));
        if (now !== heading) announcer.textContent = now + ". " + textOf(main.querySelector("[aria-live]"));
        schedule();
      }).catch(function () {
        pause("This page could not be updated just now. Refresh now tries again.");
      });
    };
    main.addEventListener("input", function (e) { if (e.target.id !== "auto-refresh") typed = true; });
    main.addEventListener("change", function (e) {
      if (e.target.id !== "auto-refresh") { typed = true; return; }
      on = e.target.checked;
      if (!on) { clearTimeout(timer); return; }
      typed = false;
      var note = main.querySelector(".refresh-note");
      if (note) note.remove();
      schedule();
    });
    schedule();
  }
})();
