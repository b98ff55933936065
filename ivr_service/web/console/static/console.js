// Live parts of the console refresh with htmx polling ("every 5s [visible()]"), which
// pauses while the tab is hidden; when the operator comes back they refresh at once.
function visible() { return document.visibilityState === "visible"; }
document.addEventListener("visibilitychange", function () {
  if (visible() && window.htmx) {
    document.querySelectorAll("[data-live]").forEach(function (el) { htmx.trigger(el, "refresh"); });
  }
});
