// The console and the big screen follow the session's live stream (relayed by the page's
// server): present, issued and cast change in place; when a vote changes state (opened,
// closed, certified) the page reloads to show the counts the service announced.
(() => {
  const root = document.querySelector("[data-session]");
  // A closed session has nothing more to follow: its stream would only end again (session-closed)
  // and reload the page, over and over.
  if (!root || !window.EventSource || root.dataset.sessionStatus === "closed") return;
  const source = new EventSource("/live/" + root.dataset.session);
  const set = (scope, name, value) => {
    for (const el of scope.querySelectorAll(`[data-live="${name}"]`)) if (el.textContent !== String(value)) el.textContent = value;
  };
  // The stream's last event says why it ends: for good (session closed, credential revoked, deputy
  // absent: show the final page), or to be resumed (token renewed, replica restarting, too far
  // behind): the EventSource then reconnects by itself with Last-Event-ID.
  source.addEventListener("end", (event) => {
    const end = JSON.parse(event.data);
    if (!end.reconnect) { source.close(); location.reload(); }
  });
  source.addEventListener("state", (event) => {
    const state = JSON.parse(event.data);
    set(document, "present", state.present);
    set(document, "seated", state.seated);
    const screenVote = document.querySelector("main[data-vote]");
    for (const vote of state.votes) {
      const card = document.querySelector(`section[data-vote="${vote.id}"]`) ||
        (screenVote && screenVote.dataset.vote === vote.id ? screenVote : null);
      if (card) {
        if (card.dataset.status !== vote.status || (card.dataset.round && Number(card.dataset.round) !== vote.round)) {
          source.close(); location.reload(); return;
        }
        set(card, "issued", vote.issued ?? 0);
        set(card, "cast", vote.cast ?? 0);
      } else if (screenVote && vote.status === "open" && screenVote.dataset.status !== "open") {
        source.close(); location.reload(); return;  // the big screen moves on to a vote just opened
      }
    }
  });
})();
