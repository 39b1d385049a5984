// The overview page: waits for analysis jobs, acknowledges alerts (no inline scripts anywhere).
"use strict";
(function () {
  const POLL_MS = 2000;
  const MAX_POLLS = 900; // 30 minutes, then the page's own «Обновить» link remains

  // Poll a job of the page; when it is done, reload the page or refetch the section.
  function watch(element) {
    const job = element.dataset.job;
    if (!job || element.dataset.watching) return;
    element.dataset.watching = "1";
    let polls = 0;
    const tick = async () => {
      polls += 1;
      let finished = false;
      try {
        const state = await window.mcu.get("/console/overview/jobs/" + encodeURIComponent(job));
        finished = state.finished;
      } catch (error) {
        finished = true; // the job is gone (finished long ago, or the server restarted)
      }
      if (!finished) {
        if (polls < MAX_POLLS) setTimeout(tick, POLL_MS);
        return;
      }
      if (element.dataset.reload === "page" || !element.dataset.src) {
        window.location.reload();
        return;
      }
      try {
        const response = await fetch(element.dataset.src, {
          credentials: "same-origin", headers: { "Accept": "text/html" } });
        if (!response.ok) throw new Error(response.statusText);
        const holder = document.createElement("div");
        holder.innerHTML = await response.text();
        const fresh = holder.querySelector("section");
        if (!fresh) throw new Error("empty section");
        element.replaceWith(fresh);
        watch(fresh);
      } catch (error) {
        window.location.reload();
      }
    };
    setTimeout(tick, POLL_MS);
  }

  // «Принять к сведению»: post with the CSRF header, then show the new status in place.
  function bindAck(form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button");
      const comment = form.querySelector("input[name=comment]");
      button.disabled = true;
      try {
        const alert = await window.mcu.post(form.action, { comment: comment ? comment.value : "" });
        const card = form.closest(".alert-card");
        if (card) {
          const badge = card.querySelector(".alert-status");
          if (badge) {
            badge.textContent = alert.status_name;
            badge.className = "badge ok alert-status";
          }
          card.classList.remove("status-new");
          card.classList.add("status-" + alert.status);
        }
        const note = document.createElement("p");
        note.className = "muted small ack-done";
        note.textContent = "Принято: " + (alert.changed_by || "");
        form.replaceWith(note);
        window.mcu.toast("Оповещение принято к сведению");
      } catch (error) {
        button.disabled = false;
        window.mcu.toast("Не удалось принять оповещение: " + error.message, "error");
      }
    });
  }

  function start() {
    document.querySelectorAll("[data-job]").forEach(watch);
    document.querySelectorAll("form.ack-form").forEach(bindAck);
    const kind = document.getElementById("period-kind");
    const form = document.getElementById("period-form");
    if (kind && form) {
      const show = () => form.classList.toggle("custom", kind.value === "custom");
      kind.addEventListener("change", show);
      show();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
