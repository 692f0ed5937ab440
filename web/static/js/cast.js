// Casting: sent once, and if the connection drops, sent again with the same Idempotency-Key
// until the ballot service says whether the ballot was recorded. The key is kept in the tab
// (sessionStorage), so switching apps in WeChat and coming back keeps it.
(() => {
  const form = document.getElementById("cast");
  if (!form) return;
  const status = document.getElementById("cast-status");
  const button = document.getElementById("cast-button");
  const keyField = form.elements.namedItem("key");
  const marks = [...new FormData(form)].filter(([k]) => k.startsWith("m.")).map((e) => e.join("=")).sort().join("&");
  const storeKey = "piaojue-cast-" + form.dataset.vote;
  try {
    const kept = JSON.parse(sessionStorage.getItem(storeKey) || "null");
    if (kept && kept.marks === marks) keyField.value = kept.key; else sessionStorage.setItem(storeKey, JSON.stringify({ key: keyField.value, marks }));
  } catch (e) { /* private mode: the key in the page still guards a double click */ }
  let sending = false;
  const show = (text, alert) => { status.textContent = text; status.className = alert ? "alert" : "notice"; };
  const replace = (html) => {
    const next = new DOMParser().parseFromString(html, "text/html");
    document.title = next.title;
    document.body.replaceWith(next.body);
    const main = document.getElementById("main");
    if (main) main.focus();
  };
  const send = async (attempt) => {
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
      replace(await response.text());
      try { sessionStorage.removeItem(storeKey); } catch (e) { /* ignore */ }
    } catch (error) {
      if (attempt < 5) {
        show(form.dataset.lost, false);
        setTimeout(() => send(attempt + 1), 800 * (attempt + 1));
      } else {
        show(form.dataset.failed, true);
        sending = false;
        button.setAttribute("aria-disabled", "false");
      }
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    event.stopImmediatePropagation();
    if (sending) return;
    sending = true;
    button.setAttribute("aria-disabled", "true");
    show(form.dataset.sending, false);
    send(0);
  }, true);
})();
