// The admin's small conveniences; every page works without them.
"use strict";

// "Select all" boxes: tick or untick every row box of the form they name.
document.addEventListener("DOMContentLoaded", () => {
  for (const all of document.querySelectorAll("input.select-all[data-form]")) {
    const boxes = () => document.querySelectorAll(`input[type=checkbox][name=ids][form="${all.dataset.form}"]`);
    all.hidden = false;
    all.addEventListener("change", () => { for (const box of boxes()) box.checked = all.checked; });
    document.addEventListener("change", (event) => {
      if (event.target.matches && event.target.matches(`input[name=ids][form="${all.dataset.form}"]`)) {
        const list = [...boxes()];
        all.checked = list.length > 0 && list.every((box) => box.checked);
      }
    });
  }
});

// The editor's "Linkbacks sent": while a row is pending (a job sends it), reload that part every
// few seconds, until none is (or ten minutes have passed; reloading the page starts again).
document.addEventListener("DOMContentLoaded", () => {
  const EVERY = 3000, FOR = 10 * 60 * 1000;
  const started = Date.now();
  const refresh = async () => {
    const part = document.querySelector("section#linkbacks[data-refresh]");
    if (!part || part.dataset.pending === "0" || Date.now() - started > FOR) return;
    try {
      const answer = await fetch(part.dataset.refresh, {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (answer.ok) {
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").querySelector("section#linkbacks");
        if (fresh) part.replaceWith(document.importNode(fresh, true));
      }
    } catch (error) {
      // Offline for a moment: try again at the next turn.
    }
    setTimeout(refresh, EVERY);
  };
  setTimeout(refresh, EVERY);
});
