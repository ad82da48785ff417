// Copy buttons: <button data-copy="element-id">. Nothing else runs here.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el) return;
  var text = el.value || el.textContent;
  function fallback() {
    el.select && el.select();
    try { document.execCommand("copy"); b.textContent = "Copied"; } catch (e) { b.textContent = "Select and copy the key"; }
  }
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text).then(function () { b.textContent = "Copied"; }, fallback);
  } else {
    fallback();
  }
});
