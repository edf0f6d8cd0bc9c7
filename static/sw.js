// steward's service worker: shows web-push notifications and opens the chat
// when one is clicked. The payload is JSON: {title, body, id, kind, plan_id,
// url, actions, urls}; `actions` are buttons ("done", "snooze") and `urls`
// the signed page each opens (the page asks before it changes anything).
"use strict";

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "steward", {
      body: data.body || "You have an update.",
      tag: data.id || undefined,
      actions: Array.isArray(data.actions) ? data.actions.slice(0, 2) : [],
      data: { url: data.url || "/", urls: data.urls || {} },
    }),
  );
});

// Only pages of this origin are opened, whatever the payload says.
function target(url) {
  try {
    const u = new URL(url || "/", self.location.origin);
    return u.origin === self.location.origin ? u : new URL("/", self.location.origin);
  } catch {
    return new URL("/", self.location.origin);
  }
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const url = target((event.action && data.urls && data.urls[event.action]) || data.url);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((list) => {
      for (const client of list) {
        if (!event.action && new URL(client.url).origin === url.origin && "focus" in client) return client.focus();
      }
      return self.clients.openWindow(url.href);
    }),
  );
});
