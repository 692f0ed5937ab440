// The ballot: count the "for" marks as they are made and stop a ballot over the limit before it
// is sent, with the reason in words (the server checks again).
(() => {
  const form = document.getElementById("ballot");
  if (!form || !form.dataset.limit) return;
  const limit = Number(form.dataset.limit);
  const count = document.getElementById("for-count");
  const button = document.getElementById("next");
  const update = () => {
    const n = form.querySelectorAll('input[value="for"]:checked').length;
    const over = n > limit;
    count.textContent = over ? form.dataset.over : form.dataset.count.replace("{n}", n);
    count.classList.toggle("over", over);
    count.setAttribute("role", over ? "alert" : "status");
    button.setAttribute("aria-disabled", over ? "true" : "false");
    return over;
  };
  form.addEventListener("change", update);
  form.addEventListener("submit", (event) => {
    if (update()) { event.preventDefault(); event.stopImmediatePropagation(); count.focus(); }
  }, true);
  count.tabIndex = -1;
  update();
})();
