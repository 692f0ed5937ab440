// Every page: a "back" link that goes back, and forms that submit once (a double click sends
// one request; the server's Idempotency-Key makes a second one harmless anyway).
document.addEventListener("click", (event) => {
  const back = event.target.closest("[data-back]");
  if (back && history.length > 1) { event.preventDefault(); history.back(); }
  if (event.target.closest("[data-print]")) { event.preventDefault(); window.print(); }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || form.method.toLowerCase() !== "post") return;
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) button.setAttribute("aria-disabled", "true");
});
window.addEventListener("pageshow", () => {  // coming back to a page: its forms can be sent again
  for (const form of document.querySelectorAll("form[data-sent]")) delete form.dataset.sent;
});
// Signed in: the page session is renewed while the page is in use (typing a long form, reading a
// table), not only when a page is loaded: at most one quiet call every four minutes of activity.
(() => {
  if (!document.body || document.body.dataset.signedIn !== "1") return;
  let last = Date.now();
  const alive = () => {
    if (Date.now() - last < 240000) return;
    last = Date.now();
    fetch("/session/alive", {credentials: "same-origin", cache: "no-store"}).catch(() => {});
  };
  for (const kind of ["keydown", "pointerdown", "scroll"]) document.addEventListener(kind, alive, {passive: true});
})();
