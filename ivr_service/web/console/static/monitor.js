// The monitor's live part is replaced every few seconds: keep the tables of numbers that
// the operator opened (<details id=…>) open across the swaps.
(function () {
  var opened = [];
  document.addEventListener("htmx:beforeSwap", function (event) {
    opened = Array.prototype.map.call(event.detail.target.querySelectorAll("details[open][id]"),
                                      function (el) { return el.id; });
  });
  document.addEventListener("htmx:afterSwap", function () {
    opened.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.open = true; }
    });
  });
})();
