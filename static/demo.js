// The demo page: picks a dev-mode guest name for this browser (kept across
// reloads; ?user=name overrides it) and embeds the widget with one tag.
"use strict";
(() => {
  const KEY = "steward-demo-user";
  const asked = new URLSearchParams(location.search).get("user");
  let user = asked || localStorage.getItem(KEY);
  if (!user) {
    user = "guest-" + Math.random().toString(36).slice(2, 8);
  }
  localStorage.setItem(KEY, user);
  document.getElementById("who").textContent = user;
  document.getElementById("new-user").addEventListener("click", () => {
    localStorage.removeItem(KEY);
    location.href = location.pathname;
  });
  for (const b of document.querySelectorAll("[data-say]")) {
    b.addEventListener("click", () => window.Steward && window.Steward.send(b.dataset.say));
  }
  const tag = document.createElement("script");
  tag.src = "/widget.js";
  tag.dataset.user = user;
  tag.dataset.title = "steward";
  tag.dataset.open = "true";
  document.body.append(tag);
})();
