// The comment form's conveniences, as WordPress's comment-reply.js gives them; the form works
// without this file (Reply then reloads the page with the form under "Reply to ...").
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const respond = document.getElementById("respond");
  const form = respond && respond.querySelector("form.comment-form");
  if (!form) return;

  // A comment that came back with errors: the first one has the focus (the page opens at #respond;
  // the browser's own scroll to it, once the page has loaded, would take the focus back: so then).
  const wrong = form.querySelector('[aria-invalid="true"]') || respond.querySelector(".form-error");
  if (wrong) {
    const focusWrong = () => { if (document.activeElement === document.body) wrong.focus({preventScroll: false}); };
    wrong.focus();
    window.addEventListener("load", () => requestAnimationFrame(focusWrong));
  }

  // "Reply": the form moves under the comment it answers; "Cancel reply" puts it back.
  const title = respond.querySelector(".comment-reply-title");
  const parent = form.querySelector('input[name="parent_id"]');
  const home = document.createElement("div");
  home.id = "respond-home";
  home.hidden = true;
  respond.before(home);
  const leave = title.cloneNode(true);
  const cancelReply = (event) => {
    if (event) event.preventDefault();
    home.after(respond);
    title.replaceChildren(...leave.cloneNode(true).childNodes);
    parent.value = "";
  };
  for (const link of document.querySelectorAll("a.comment-reply-link[data-reply-to]")) {
    link.addEventListener("click", (event) => {
      const comment = document.getElementById(`comment-${link.dataset.replyTo}`);
      if (!comment) return; // the page's own reply address still works
      event.preventDefault();
      comment.querySelector(".comment-body").after(respond);
      parent.value = link.dataset.replyTo;
      const cancel = document.createElement("a");
      cancel.href = "#respond";
      cancel.rel = "nofollow";
      cancel.id = "cancel-comment-reply-link";
      cancel.textContent = "Cancel reply";
      cancel.addEventListener("click", cancelReply);
      const small = document.createElement("small");
      small.append(cancel);
      title.replaceChildren(`Reply to ${link.dataset.author} `, small);
      form.querySelector("textarea").focus();
    });
  }
  const serverCancel = title.querySelector("a");
  if (serverCancel && parent.value) serverCancel.addEventListener("click", cancelReply);

  // "Save my name, email, and website": a cookie of this browser's, read here only (the server
  // never uses it; the pages it fills are the same cached ones every reader gets).
  const COOKIE = "comment_author";
  const consent = form.querySelector("#save-commenter");
  const fields = ["author_name", "author_email", "author_url"].map((name) => form.elements[name]).filter(Boolean);
  if (!consent) return;
  consent.closest("p").hidden = false;
  const saved = document.cookie.split("; ").find((pair) => pair.startsWith(`${COOKIE}=`));
  if (saved) {
    try {
      const values = JSON.parse(decodeURIComponent(saved.slice(COOKIE.length + 1)));
      for (const field of fields) if (!field.value && typeof values[field.name] === "string") field.value = values[field.name];
      consent.checked = true;
    } catch (error) {
      // A cookie we cannot read is forgotten below, at the next comment.
    }
  }
  form.addEventListener("submit", () => {
    const secure = location.protocol === "https:" ? "; Secure" : "";
    if (consent.checked) {
      const values = Object.fromEntries(fields.map((field) => [field.name, field.value.trim()]));
      document.cookie = `${COOKIE}=${encodeURIComponent(JSON.stringify(values))}; Max-Age=31536000; Path=/; SameSite=Lax${secure}`;
    } else {
      document.cookie = `${COOKIE}=; Max-Age=0; Path=/; SameSite=Lax${secure}`;
    }
  });
});
