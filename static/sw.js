// steward's service worker: shows web-push notifications and opens the chat
// when one is clicked. The payload is JSON: {title, body, id, kind, plan_id, url}.
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
      data: { url: data.url || "/" },
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
  const url = target(event.notification.data && event.notification.data.url);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((list) => {
      for (const client of list) {
        if (new URL(client.url).origin === url.origin && "focus" in client) return client.focus();
      }
      return self.clients.openWindow(url.href);
    }),
  );
});
