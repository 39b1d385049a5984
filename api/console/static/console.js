// Shared helpers of the console pages (no build step, no external scripts).
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  // fetch() with the session's CSRF token; JSON in, JSON (or text) out; throws on HTTP errors.
  async function request(method, url, body) {
    const headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const type = response.headers.get("content-type") || "";
    const data = type.includes("application/json") ? await response.json() : await response.text();
    if (!response.ok) {
      const detail = data && data.detail ? data.detail : response.statusText;
      throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return data;
  }

  // A short message at the bottom of the screen (role=status, read by screen readers).
  function toast(text, kind) {
    let box = document.getElementById("toast");
    if (!box) {
      box = document.createElement("div");
      box.id = "toast";
      box.setAttribute("role", "status");
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.className = "toast " + (kind || "info");
    clearTimeout(box._timer);
    box._timer = setTimeout(() => { box.className = "toast hidden"; }, 4000);
  }

  // Is the keyboard focus in a place where keys type text?
  function typing(event) {
    const el = event.target;
    return el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  }

  window.mcu = { csrf, request, toast, typing,
    get: (url) => request("GET", url), post: (url, body) => request("POST", url, body) };
})();
