// Live parts of the console refresh with htmx polling ("every 5s [visible()]"), which
// pauses while the tab is hidden; when the operator comes back they refresh at once.
function visible() { return document.visibilityState === "visible"; }
document.addEventListener("visibilitychange", function () {
  if (visible() && window.htmx) {
    document.querySelectorAll("[data-live]").forEach(function (el) { htmx.trigger(el, "refresh"); });
  }
});

// Forms marked data-download (a report, an export: a workbook that takes a while to write)
// are sent with fetch instead of leaving the page: their progress line (.progress, a
// role=status region) shows while the server works, the button waits, the rest of the page
// stays usable, and the workbook is saved as the plain form post would save it. A refusal
// (400: a wrong period) is a console page: its main part replaces this one's, as htmx's
// hx-select does elsewhere. Without JavaScript the form simply posts.
function savedName(disposition) {
  var utf8 = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
  if (utf8) { return decodeURIComponent(utf8[1]); }
  var plain = /filename="?([^";]+)"?/i.exec(disposition || "");
  return plain ? plain[1] : "download.xlsx";
}
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches("form[data-download]") || !window.fetch || event.defaultPrevented) { return; }
  event.preventDefault();
  var progress = form.querySelector(".progress");
  var button = form.querySelector("button[type=submit], button:not([type])");
  var method = (form.getAttribute("method") || "get").toUpperCase();
  var data = new FormData(form);
  var url = form.action;
  var options = {method: method, credentials: "same-origin"};
  if (method === "GET") { url += (url.indexOf("?") < 0 ? "?" : "&") + new URLSearchParams(data).toString(); }
  else { options.body = data; }
  form.setAttribute("aria-busy", "true");
  if (progress) { progress.classList.add("htmx-request"); }
  if (button) { button.disabled = true; }
  form.querySelectorAll(".download-failed").forEach(function (el) { el.remove(); });
  form.dispatchEvent(new CustomEvent("sipas:download-start", {bubbles: true}));
  function done() {
    form.removeAttribute("aria-busy");
    if (progress) { progress.classList.remove("htmx-request"); }
    if (button) { button.disabled = false; }
  }
  function failed(text) {
    var note = document.createElement("p");
    note.className = "error download-failed";
    note.setAttribute("role", "alert");
    note.textContent = text;
    form.appendChild(note);
  }
  fetch(url, options).then(function (response) {
    var disposition = response.headers.get("Content-Disposition") || "";
    if (response.ok && /attachment/i.test(disposition)) {
      return response.blob().then(function (blob) {
        var link = document.createElement("a");
        link.href = URL.createObjectURL(blob);
        link.download = savedName(disposition);
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
        done();
      });
    }
    return response.text().then(function (text) {
      done();
      var page = new DOMParser().parseFromString(text, "text/html").getElementById("main");
      var main = document.getElementById("main");
      if (page && main && (response.headers.get("Content-Type") || "").indexOf("text/html") === 0) {
        main.replaceWith(page);
        if (window.htmx) { htmx.process(page); }
      } else {
        failed("HTTP " + response.status);
      }
    });
  }).catch(function (error) { done(); failed(String(error)); });
});
