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
  // Forms marked data-once disable their submit button after the first submit (the server also refuses repeats).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.setAttribute("aria-disabled", "true");
        b.addEventListener("click", function (e) { e.preventDefault(); });
      });
    });
  });
  // "Select all on this page" and "Select none" tick or clear every device of the list's form.
  document.querySelectorAll("[data-select]").forEach(function (btn) {
    var form = btn.closest("form");
    if (!form) return;
    btn.closest(".select-buttons").hidden = false;
    btn.addEventListener("click", function () {
      var on = btn.getAttribute("data-select") === "all";
      form.querySelectorAll('input[type=checkbox][name="device"]').forEach(function (box) { box.checked = on; });
    });
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
