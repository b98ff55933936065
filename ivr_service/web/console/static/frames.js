// Forms marked data-swap-errors show the page the server answers with a refusal (400: an
// unusable file or a wrong value; 409: the campaign cannot take a frame): htmx leaves
// 4xx answers out by default, and that page says what to fix.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  var form = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("[data-swap-errors]");
  if (form && (status === 400 || status === 409)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
// Any other failure (a file over the size limit, a server error): say so by the form.
document.addEventListener("htmx:responseError", function (event) {
  var form = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("[data-swap-errors]");
  if (!form || event.detail.xhr.status === 400 || event.detail.xhr.status === 409) { return; }
  var text = "HTTP " + event.detail.xhr.status;
  try { text = JSON.parse(event.detail.xhr.responseText).message || text; } catch (e) { /* not JSON */ }
  var note = form.querySelector(".error") || document.createElement("p");
  note.className = "error";
  note.setAttribute("role", "alert");
  note.textContent = text;
  form.appendChild(note);
});
