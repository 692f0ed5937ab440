// Building a slate: candidates, seats and the margin (差额) as the office ticks them. Whether the
// slate is competitive enough is the intake service's rule; its answer is shown when published.
(() => {
  const form = document.getElementById("slate");
  if (!form) return;
  const out = document.getElementById("margin");
  const update = () => {
    const n = form.querySelectorAll('input[name="proposal"]:checked').length;
    const seats = Number(document.getElementById("seats").value) || 0;
    out.textContent = form.dataset.template.replace("{n}", n).replace("{seats}", seats).replace("{diff}", n - seats);
  };
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
