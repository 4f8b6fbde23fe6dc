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
