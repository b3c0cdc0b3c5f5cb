// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Copy buttons: <button data-copy="element-id"> beside a .copy-status line. The target stays
  // selectable text without JavaScript. Where the clipboard is refused (a page not served over
  // HTTPS, a browser policy), the text is selected and the button says which keys copy it.
  var copyKeys = /Mac|iPhone|iPad/.test(navigator.platform || "") ? "\u2318C" : "Ctrl+C";
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    var label = btn.textContent, timer = null;
    var status = btn.parentNode.querySelector(".copy-status");
    btn.hidden = false;
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
  document.querySelectorAll("[data-sends-for]").forEach(function (out) {
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
  // Tables: every cell carries its column's heading (data-label) and the status column's mark
  // (data-col), for the stacked layout phones get from app.css.
  document.querySelectorAll(".table-wrap table").forEach(function (table) {
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
  // Forms marked data-once disable their submit button after the first submit (the server also refuses repeats).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.setAttribute("aria-disabled", "true");
        b.addEventListener("click", function (e) { e.preventDefault(); });
      });
    });
  });
  // "Select all" and "Select none" buttons tick or clear every checkbox of their form named by
  // data-select-name (the devices of a list by default; "leaveOut" on an import's pre-flight).
  document.querySelectorAll("[data-select]").forEach(function (btn) {
    var form = btn.closest("form");
    if (!form) return;
    btn.closest(".select-buttons").hidden = false;
    var name = btn.getAttribute("data-select-name") || "device";
    btn.addEventListener("click", function () {
      var on = btn.getAttribute("data-select") === "all";
      form.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) { box.checked = on; });
      form.dispatchEvent(new Event("change"));
    });
  });
  // An import's pre-flight: the import button and the summary say how many devices will be sent
  // as "Leave out" ticks change (the server renders the same count for the ticks it sends).
  document.querySelectorAll("button[data-import-button]").forEach(function (btn) {
    var form = btn.closest("form");
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
  // Pages marked data-refresh-seconds reload themselves while work is in progress, unless the
  // person turns it off (#auto-refresh); without this file they offer a "Refresh now" link.
  var refresh = document.querySelector("[data-refresh-seconds]");
  if (refresh) {
    var s = parseInt(refresh.getAttribute("data-refresh-seconds"), 10);
    var timer = null;
    var start = function () { if (s > 0) timer = setTimeout(function () { window.location.reload(); }, s * 1000); };
    var toggle = document.getElementById("auto-refresh");
    if (toggle) {
      toggle.closest("label").hidden = false;
      toggle.addEventListener("change", function () {
        if (toggle.checked) { start(); } else { clearTimeout(timer); }
      });
    }
    start();
  }
})();
