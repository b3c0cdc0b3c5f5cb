// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Copy buttons: <button data-copy="element-id">. The target stays selectable text without JavaScript.
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var target = document.getElementById(btn.getAttribute("data-copy"));
      if (!target || !navigator.clipboard) return;
      navigator.clipboard.writeText(target.textContent).then(function () {
        var label = btn.textContent;
        btn.textContent = "Copied";
        var status = document.getElementById("copy-status");
        if (status) status.textContent = "Copied to the clipboard.";
        setTimeout(function () { btn.textContent = label; }, 2000);
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
