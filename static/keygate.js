// Copy buttons: <button data-copy="element-id">. Nothing else runs here.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el) return;
  var text = el.value || el.textContent;
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text).then(function () { b.textContent = "Copied"; });
  } else {
    el.select && el.select();
    document.execCommand("copy");
    b.textContent = "Copied";
  }
});
