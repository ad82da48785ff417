// keygate's only script. The pages work without it; with it:
// - copy buttons: <button data-copy="element-id">;
// - sections marked data-dialog become modal <dialog>s, opened by a button put
//   in their place (data-opener, data-opener-label, data-opener-class) or by a
//   link or button with data-opens="<name>"; data-drawer slides in from the
//   side; data-open-now opens at once (a form sent back with an error);
// - a <dialog data-modal> shown open by the server becomes modal; closing it
//   (Escape too) follows its [data-close] link.
// showModal() makes the rest of the page inert and Escape close the dialog;
// Tab is also kept cycling inside it, and focus goes back to the opener.
(function () {
  "use strict";

  function copy(b) {
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el) return;
    var text = el.value || el.textContent;
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
      d.addEventListener("close", function () {
        // The close() just above fires too, later: the dialog is open again then.
        if (d.open) return;
        var link = d.querySelector("a[data-close]");
        if (link) window.location.assign(link.href);
      });
    });
    // Choosing Custom opens the list of scopes.
    var access = document.getElementById("key-access");
    var box = document.querySelector(".scopes-box");
    if (access && box) {
      access.addEventListener("change", function () { if (access.value === "custom") box.open = true; });
    }
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
