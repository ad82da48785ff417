// keygate's only script. The pages work without it; with it:
// - copy buttons: <button data-copy="element-id">;
// - sections marked data-dialog become modal <dialog>s, opened by a button put
//   in their place (data-opener, data-opener-label, data-opener-class) or by a
//   link or button with data-opens="<name>"; data-drawer slides in from the
//   side; data-open-now opens at once (a form sent back with an error);
// - a <dialog data-modal> shown open by the server becomes modal; closing it
//   (Escape too) follows its [data-close] link.
// - a field with data-confirm-name="<name>" keeps its form's submit button
//   disabled until the name is typed exactly; a wrong name shows the error
//   next to the field (the server checks the name again);
// - Escape on a show-once dialog first warns that the secret will be gone;
// - a table wider than its box (.table-wrap) gets a "scroll sideways" hint.
// showModal() makes the rest of the page inert and Escape close the dialog;
// Tab is also kept cycling inside it, and focus goes back to the opener.
(function () {
  "use strict";

  function copy(b) {
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el) return;
    var text = (b.getAttribute("data-copy-prefix") || "") + (el.value || el.textContent);
    function done(msg) { b.textContent = msg; }
    function fallback() {
      if (el.select) el.select();
      try { document.execCommand("copy"); done("Copied"); } catch (e) { done("Select and copy the key"); }
    }
    if (navigator.clipboard) {
      navigator.clipboard.writeText(text).then(function () { done("Copied"); }, fallback);
    } else {
      fallback();
    }
  }

  var FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";

  function focusables(d) {
    return Array.prototype.filter.call(d.querySelectorAll(FOCUSABLE), function (el) {
      return el.getClientRects().length > 0;
    });
  }

  // Tab and Shift+Tab wrap around inside an open modal dialog.
  function trap(ev) {
    if (ev.key !== "Tab") return;
    var d = ev.currentTarget;
    var all = focusables(d);
    if (!all.length) return;
    var first = all[0], last = all[all.length - 1];
    if (ev.shiftKey && (document.activeElement === first || !d.contains(document.activeElement))) {
      ev.preventDefault(); last.focus();
    } else if (!ev.shiftKey && (document.activeElement === last || !d.contains(document.activeElement))) {
      ev.preventDefault(); first.focus();
    }
  }

  function open(d, opener) {
    if (d.open) return;
    d.returnTo = opener || document.activeElement;
    d.showModal();
    var first = d.querySelector("input:not([type=hidden]), select, textarea") || focusables(d)[0];
    if (first) first.focus();
  }

  function closeButton(d, label) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "dialog-close";
    b.textContent = "Cancel";
    b.setAttribute("aria-label", "Cancel: close " + label);
    b.addEventListener("click", function () { d.close(); });
    return b;
  }

  var dialogs = {};

  function dialogize(section) {
    var name = section.getAttribute("data-dialog");
    var heading = section.querySelector("h1, h2, h3");
    var label = heading ? heading.textContent : name;
    var d = document.createElement("dialog");
    d.className = "dialog" + (section.hasAttribute("data-drawer") ? " drawer" : "");
    d.id = name + "-dialog";
    if (heading && heading.id) d.setAttribute("aria-labelledby", heading.id);
    else d.setAttribute("aria-label", label);
    var openerText = section.getAttribute("data-opener");
    section.parentNode.insertBefore(d, section);
    if (openerText) {
      var o = document.createElement("button");
      o.type = "button";
      o.textContent = openerText;
      o.className = section.getAttribute("data-opener-class") || "";
      o.setAttribute("data-opens", name);
      o.setAttribute("aria-haspopup", "dialog");
      var ol = section.getAttribute("data-opener-label");
      if (ol) o.setAttribute("aria-label", ol);
      d.parentNode.insertBefore(o, d);
    }
    d.appendChild(section);
    section.classList.add("in-dialog");
    var actions = section.querySelector(".actions") || section.querySelector("form");
    var cancel = closeButton(d, label);
    if (actions && actions.classList.contains("actions")) actions.appendChild(cancel);
    else section.appendChild(cancel);
    d.addEventListener("keydown", trap);
    d.addEventListener("close", function () {
      if (d.returnTo && d.returnTo.focus) d.returnTo.focus();
    });
    dialogs[name] = d;
    return d;
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-dialog]"), dialogize);
    Array.prototype.forEach.call(document.querySelectorAll("[data-opens]"), function (o) {
      o.setAttribute("aria-haspopup", "dialog");
      if (o.tagName === "A") o.setAttribute("role", "button");
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-open-now]"), function (s) {
      var d = s.closest("dialog");
      if (d) open(d, document.querySelector("[data-opens='" + s.getAttribute("data-dialog") + "']"));
    });
    // The show-once dialogs: modal, and closing them is leaving them.
    Array.prototype.forEach.call(document.querySelectorAll("dialog[data-modal][open]"), function (d) {
      d.close();
      d.showModal();
      var c = d.querySelector("[data-copy]");
      if (c) c.focus();
      d.addEventListener("keydown", trap);
      // Escape warns once before the secret is thrown away; a second
      // Escape (or the close link) leaves.
      var warning = d.querySelector(".escape-warning");
      d.addEventListener("keydown", function (ev) {
        if (ev.key !== "Escape" || !warning || !warning.hidden) return;
        ev.preventDefault();
        warning.hidden = false;
      });
      d.addEventListener("cancel", function (ev) {
        if (warning && warning.hidden) { ev.preventDefault(); warning.hidden = false; }
      });
      d.addEventListener("close", function () {
        // The close() just above fires too, later: the dialog is open again then.
        if (d.open) return;
        var link = d.querySelector("a[data-close]");
        if (link) window.location.assign(link.href);
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("input[data-confirm-name]"), confirmByName);
    tableCues();
    window.addEventListener("resize", tableCues);
    // Choosing Custom opens the list of scopes.
    var access = document.getElementById("key-access");
    var box = document.querySelector(".scopes-box");
    if (access && box) {
      access.addEventListener("change", function () { if (access.value === "custom") box.open = true; });
    }
  }

  // A typed-name confirmation: the submit button waits for the exact name.
  function confirmByName(input) {
    var form = input.form;
    if (!form) return;
    var want = input.getAttribute("data-confirm-name");
    var buttons = form.querySelectorAll("button[type=submit]");
    var err = document.createElement("p");
    err.className = "flash error field-error";
    err.id = input.id + "-error";
    err.hidden = true;
    input.parentNode.insertBefore(err, input.nextSibling);
    var described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", (described ? described + " " : "") + err.id);
    var anyCase = input.hasAttribute("data-confirm-any-case");
    function norm(v) { return anyCase ? v.toLowerCase() : v; }
    function matches() { return norm(input.value.trim()) === norm(want); }
    function showError(show) {
      err.hidden = !show;
      if (show) {
        err.setAttribute("role", "alert");
        err.textContent = "That is not the name. Type it exactly: " + want;
        input.setAttribute("aria-invalid", "true");
      } else {
        err.removeAttribute("role");
        err.textContent = "";
        input.removeAttribute("aria-invalid");
      }
    }
    function update() {
      var ok = matches();
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = !ok; });
      // Wrong as soon as it can no longer become the name.
      showError(input.value !== "" && !ok && norm(want).indexOf(norm(input.value.replace(/^\s+/, ""))) !== 0);
    }
    input.addEventListener("input", update);
    input.addEventListener("change", function () { if (!matches() && input.value !== "") showError(true); });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !matches()) { ev.preventDefault(); showError(true); }
    });
    form.addEventListener("submit", function (ev) {
      if (!matches()) { ev.preventDefault(); showError(true); input.focus(); }
    });
    update();
  }

  // Tables wider than their box: a visible hint above, and a class for the
  // edge cue.
  function tableCues() {
    Array.prototype.forEach.call(document.querySelectorAll(".table-wrap"), function (w) {
      var hint = w.previousElementSibling;
      if (!hint || !hint.classList.contains("scroll-hint")) {
        hint = document.createElement("p");
        hint.className = "scroll-hint muted";
        hint.textContent = "The table is wider than the page: scroll it sideways to see every column.";
        w.parentNode.insertBefore(hint, w);
      }
      var over = w.scrollWidth > w.clientWidth + 1;
      w.classList.toggle("overflows", over);
      hint.classList.toggle("shown", over);
    });
  }

  document.addEventListener("click", function (ev) {
    var c = ev.target.closest("[data-copy]");
    if (c) { copy(c); return; }
    var o = ev.target.closest("[data-opens]");
    if (o && dialogs[o.getAttribute("data-opens")]) {
      ev.preventDefault();
      open(dialogs[o.getAttribute("data-opens")], o);
    }
  });
  // A link acting as a button opens with Space as well as Enter.
  document.addEventListener("keydown", function (ev) {
    var o = ev.target.closest && ev.target.closest("a[data-opens]");
    if (o && ev.key === " ") { ev.preventDefault(); o.click(); }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
