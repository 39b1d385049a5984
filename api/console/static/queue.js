// The operator's review queue: one appeal at a time, decided from the keyboard.
// Appeal text is never parsed as HTML: highlights are built from text nodes and <mark> elements.
"use strict";
(function () {
  const app = document.getElementById("queue-app");
  if (!app || !window.mcu) return;
  const mcu = window.mcu;
  const cfg = JSON.parse(app.dataset.config);
  const $ = (id) => document.getElementById(id);
  const WORD = /[\p{L}\p{N}_]+/gu;

  const state = {
    items: [],          // the claimed items on screen (queue order)
    current: null,      // the open appeal (detail)
    selection: {},      // label -> chosen value
    active: cfg.label_order[0],
    classes: {},        // label -> every class (for the search box)
    recent: [],         // last decisions (newest first)
    skipped: new Set(), // appeals skipped in this page
    matching: 0,
    othersHeld: 0,
    busy: 0,
    searchHits: [],
    searchIndex: 0,
  };

  // ------------------------------------------------------------------ small helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-")) node.setAttribute(key, String(value));
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function norm(text) { return String(text).toLowerCase().replace(/ё/g, "е"); }
  function pct(p) {
    return (p === null || p === undefined) ? "—" : (100 * p).toFixed(0) + "\u202f%";
  }
  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const two = (n) => String(n).padStart(2, "0");
    return `${two(d.getDate())}.${two(d.getMonth() + 1)}.${d.getFullYear()} ` +
      `${two(d.getHours())}:${two(d.getMinutes())}`;
  }
  function day(iso) { return when(iso).split(" ")[0]; }
  function title(label) { return cfg.titles[label] || label; }
  function setBusy(delta) {
    state.busy = Math.max(0, state.busy + delta);
    app.dataset.busy = state.busy ? "1" : "0";
  }
  async function guarded(fn) {
    if (state.busy) return;
    setBusy(1);
    try { await fn(); } catch (err) { mcu.toast(err.message || String(err), "error"); }
    finally { setBusy(-1); }
  }

  // ------------------------------------------------------------------ filters and claims
  function filters() {
    const form = $("queue-filter");
    const data = new FormData(form);
    const pick = (name) => (data.get(name) || null);
    const audit = data.get("audit");
    return {
      channel: pick("channel"), topic: pick("topic"), department: pick("department"),
      territory: pick("territory"), audit: audit === "1" ? true : audit === "0" ? false : null,
      sort: data.get("sort") || "urgency",
    };
  }

  async function claim() {
    const body = Object.assign(filters(), {
      size: cfg.size, exclude: Array.from(state.skipped).slice(-500),
      keep: state.current ? state.current.appeal_id : null,
    });
    const data = await mcu.post("/console/queue/claim", body);
    state.items = data.items;
    state.matching = data.matching;
    state.othersHeld = data.held_by_others;
    renderList();
    return data;
  }

  async function openNext() {
    const next = state.items.find((i) => !state.current || i.appeal_id !== state.current.appeal_id);
    if (!next) { showEmpty(); return; }
    await openItem(next.appeal_id);
  }

  async function openItem(appealId) {
    try {
      state.current = await mcu.post(`/console/queue/item/${appealId}/open`);
    } catch (err) {
      mcu.toast(err.message, "error");
      state.items = state.items.filter((i) => i.appeal_id !== appealId);
      state.current = null;
      await claim();
      if (state.items.length) await openItem(state.items[0].appeal_id);
      else showEmpty();
      return;
    }
    state.selection = {};
    for (const label of state.current.label_order) {
      const view = state.current.labels[label];
      const value = view.corrected || view.suggested;
      if (value) state.selection[label] = value;
    }
    state.active = state.current.label_order[0];
    renderAppeal();
    renderLabels();
    renderHistory();
    renderList();
  }

  function showEmpty() {
    state.current = null;
    $("appeal-body").hidden = true;
    $("appeal-body").removeAttribute("data-appeal-id");
    const empty = $("appeal-empty");
    empty.hidden = false;
    empty.textContent = !state.matching ? "Под этот фильтр открытых обращений нет."
      : state.skipped.size ? `Остались пропущенные вами обращения (${state.skipped.size}) ` +
        "и взятые другими операторами; обновите страницу, чтобы вернуться к пропущенным."
      : "Все подходящие обращения сейчас в работе у других операторов.";
    clear($("labels"));
    clear($("history"));
    renderList();
  }

  // ------------------------------------------------------------------ rendering
  function renderList() {
    const list = $("item-list");
    clear(list);
    for (const item of state.items) {
      const current = state.current && state.current.appeal_id === item.appeal_id;
      const dept = item.suggested[cfg.department_label] || "—";
      list.appendChild(el("li", {
        "data-appeal-id": item.appeal_id, class: current ? "current" : "",
        "aria-current": current ? "true" : null,
        onclick: () => guarded(() => openItem(item.appeal_id)),
      },
      el("span", { class: "item-head" },
        el("strong", { text: `№${item.appeal_id}` }),
        el("span", { class: `badge risk-${item.risk}`, text: item.risk_name }),
        item.audit ? el("span", { class: "badge warn", text: "аудит" }) : null,
        item.urgency > 0 ? el("span", { class: "badge bad", text: `срочн. ${pct(item.urgency)}` })
          : null),
      el("span", { class: "item-sub muted", text: `${item.territory || "—"} · ${day(item.created_at)}` }),
      el("span", { class: "item-sub", text: dept, title: dept })));
    }
    $("list-count").textContent = state.items.length ? `(${state.items.length})` : "";
    const others = state.othersHeld ? `, у других операторов: ${state.othersHeld}` : "";
    $("queue-counts").textContent = `В очереди по фильтру: ${state.matching}${others}`;
  }

  function renderAppeal() {
    const a = state.current;
    $("appeal-empty").hidden = true;
    const body = $("appeal-body");
    body.hidden = false;
    body.dataset.appealId = a.appeal_id;
    $("a-id").textContent = `№${a.appeal_id}`;
    $("a-channel").textContent = a.channel_name;
    $("a-territory").textContent = a.territory || "территория не указана";
    $("a-created").textContent = `подано ${when(a.created_at)}`;
    const deadline = $("a-deadline");
    deadline.textContent = a.deadline
      ? `срок до ${when(a.deadline)} (${a.deadline_rule}) · ${a.risk_name}` : a.risk_name;
    deadline.className = `badge risk-${a.risk}`;
    const urgency = $("a-urgency");
    urgency.textContent = `срочность ${pct(a.urgency)}`;
    urgency.className = a.urgency > 0 ? "badge bad" : "badge";
    $("a-audit").hidden = !a.audit;
    $("a-address").textContent = a.address ? `Адрес: ${a.address}` : "Адрес не указан";
    const rule = $("a-rule");
    if (a.rule) {
      rule.hidden = false;
      rule.textContent = `Сработало правило куратора «${a.rule.id}»: ${a.rule.reason}`;
    } else {
      rule.hidden = true;
      rule.textContent = "";
    }
    const reasons = $("a-reasons");
    const words = (a.urgency_reasons || []).map((r) => r.description || r.id).filter(Boolean);
    reasons.hidden = !words.length;
    reasons.textContent = words.length ? `Срочность: ${words.join("; ")}` : "";
    renderHighlights();
  }

  // Each explanation entry is a word or a word n-gram with its contribution to the suggestion
  // (for the linear model, exactly the token's weight × feature value). Tokens of the text that
  // match get a <mark>; the text itself only ever goes into text nodes.
  function renderHighlights() {
    const a = state.current;
    const label = state.active;
    const view = a.labels[label];
    const text = a.text || "";
    const tokens = [];
    for (const match of text.matchAll(WORD)) {
      tokens.push({ start: match.index, end: match.index + match[0].length, norm: norm(match[0]) });
    }
    const weights = new Array(tokens.length).fill(0);
    const unmatched = [];
    const top = Math.max(1e-9, ...view.explanation.map(([, w]) => Math.abs(w)));
    for (const [phrase, weight] of view.explanation) {
      const words = (String(phrase).match(WORD) || []).map(norm);
      let found = false;
      if (words.length) {
        for (let i = 0; i + words.length <= tokens.length; i++) {
          let same = true;
          for (let j = 0; j < words.length && same; j++) same = tokens[i + j].norm === words[j];
          if (!same) continue;
          found = true;
          for (let j = 0; j < words.length; j++) {
            if (Math.abs(weight) > Math.abs(weights[i + j])) weights[i + j] = weight;
          }
        }
      }
      if (!found) unmatched.push(phrase);
    }
    const box = $("a-text");
    clear(box);
    let at = 0;
    tokens.forEach((token, i) => {
      if (!weights[i]) return;
      if (token.start > at) box.appendChild(document.createTextNode(text.slice(at, token.start)));
      const level = Math.min(3, 1 + Math.floor(3 * Math.abs(weights[i]) / top - 1e-9));
      box.appendChild(el("mark", {
        class: `${weights[i] > 0 ? "pos" : "neg"} w${level}`,
        title: `вклад в «${view.suggested || ""}»: ${weights[i] > 0 ? "+" : ""}${weights[i].toFixed(3)}`,
        text: text.slice(token.start, token.end),
      }));
      at = token.end;
    });
    if (at < text.length) box.appendChild(document.createTextNode(text.slice(at)));
    const why = $("a-why");
    why.textContent = view.explanation.length
      ? `Подсвечены слова, которые подтолкнули модель к «${view.suggested || "—"}» ` +
        `(${title(label)})` + (unmatched.length ? `; признаки вне текста: ${unmatched.join(", ")}` : "")
      : `Для метки «${title(label)}» нет объяснения модели.`;
  }

  function optionsOf(label) {
    const view = state.current.labels[label];
    const rows = [];
    if (view.suggested) rows.push({ value: view.suggested, p: view.confidence, key: "↵", kind: "suggested" });
    view.alternatives.slice(0, 9).forEach(([value, p], n) => rows.push({ value, p, key: String(n + 1), kind: "alt" }));
    const chosen = state.selection[label];
    if (chosen && !rows.some((r) => r.value === chosen)) rows.push({ value: chosen, p: null, key: "/", kind: "search" });
    return rows;
  }

  function renderLabels() {
    const box = $("labels");
    clear(box);
    if (!state.current) return;
    for (const label of state.current.label_order) {
      const view = state.current.labels[label];
      const active = label === state.active;
      const list = el("ol", { class: "options", role: "listbox", "aria-label": title(label) });
      for (const row of optionsOf(label)) {
        const selected = state.selection[label] === row.value;
        list.appendChild(el("li", {
          class: `option ${row.kind}${selected ? " selected" : ""}`, role: "option",
          "aria-selected": selected ? "true" : "false", "data-value": row.value,
          onclick: () => { state.active = label; choose(label, row.value); },
        },
        el("kbd", { text: active ? row.key : "" }),
        el("span", { class: "value", text: row.value, title: row.value }),
        el("span", { class: "p muted", text: row.p === null || row.p === undefined ? "" : pct(row.p) })));
      }
      const head = el("div", { class: "label-head" },
        el("strong", { text: title(label) }),
        view.suggested
          ? el("span", { class: "muted", text: ` предложено: уверенность ${pct(view.confidence)}` })
          : el("span", { class: "muted", text: " предложения нет" }));
      const notes = [];
      if (view.source) notes.push(`в источнике: ${view.source}`);
      if (view.corrected) notes.push(`исправлено ранее: ${view.corrected}`);
      box.appendChild(el("section", {
        class: `label-block${active ? " active" : ""}`, "data-label": label,
        onclick: () => { if (state.active !== label) { state.active = label; renderLabels(); renderHighlights(); } },
      }, head, list, notes.length ? el("p", { class: "muted small", text: notes.join(" · ") }) : null));
    }
  }

  function choose(label, value) {
    state.selection[label] = value;
    renderLabels();
    renderHighlights();
  }

  function renderHistory() {
    const box = $("history");
    clear(box);
    const h = state.current.history;
    const part = (heading, rows) => {
      box.appendChild(el("h3", { text: `${heading} (${rows.length})` }));
      if (!rows.length) { box.appendChild(el("p", { class: "muted small", text: "нет" })); return; }
      const list = el("ul", { class: "history-list" });
      for (const row of rows) {
        list.appendChild(el("li", {},
          el("span", { class: "muted", text: `№${row.appeal_id} · ${day(row.created_at)} · ` }),
          el("span", { text: [row.topic, row.department].filter(Boolean).join(" → ") || "—" }),
          row.queue === "open" ? el("span", { class: "badge warn", text: "в очереди" }) : null,
          el("div", { class: "snippet", text: row.snippet })));
      }
      box.appendChild(list);
    };
    part("Тот же адрес, раньше", h.same_address);
    part(`${state.current.territory || "Территория"}: та же тематика за 30 дней`, h.same_topic);
  }

  function renderRecent() {
    const list = $("recent");
    clear(list);
    if (!state.recent.length) {
      list.appendChild(el("li", { class: "muted small", text: "пока нет" }));
      return;
    }
    for (const d of state.recent) {
      const values = cfg.label_order.map((l) => d.labels[l]).filter(Boolean);
      list.appendChild(el("li", { "data-decision-id": d.decision_id, "data-appeal-id": d.appeal_id },
        el("strong", { text: `№${d.appeal_id}` }),
        el("span", { class: "muted", text: d.kind === "confirm" ? " подтверждено " : " " }),
        el("span", { class: "small", text: values.join(" · ") }),
        el("button", { type: "button", class: "link-button", text: "изменить",
          onclick: () => guarded(() => undo(d.decision_id)) })));
    }
  }

  // ------------------------------------------------------------------ actions
  async function submit() {
    if (!state.current) return;
    const appealId = state.current.appeal_id;
    const labels = {};
    for (const label of state.current.label_order) {
      if (state.selection[label]) labels[label] = state.selection[label];
    }
    if (!Object.keys(labels).length) { mcu.toast("Выберите значение", "error"); return; }
    let data;
    try {
      data = await mcu.post(`/console/queue/item/${appealId}/decide`, { labels });
    } catch (err) {
      mcu.toast(err.message, "error");
      state.current = null;
      await claim();
      await openNext();
      return;
    }
    state.recent.unshift(data.decision);
    state.recent = state.recent.slice(0, cfg.recent);
    renderRecent();
    state.items = state.items.filter((i) => i.appeal_id !== appealId);
    state.current = null;
    await claim();
    await openNext();
  }

  async function skip() {
    if (!state.current) return;
    const appealId = state.current.appeal_id;
    state.skipped.add(appealId);
    await mcu.post(`/console/queue/item/${appealId}/skip`);
    state.items = state.items.filter((i) => i.appeal_id !== appealId);
    state.current = null;
    await claim();
    await openNext();
  }

  async function undo(decisionId) {
    const body = decisionId ? { decision_id: decisionId } : {};
    if (!decisionId && !state.recent.length) { mcu.toast("Нечего отменять"); return; }
    const data = await mcu.post("/console/queue/undo", body);
    const undone = data.undone;
    state.recent = state.recent.filter((d) => d.decision_id !== undone.decision_id);
    renderRecent();
    state.skipped.delete(undone.appeal_id);
    mcu.toast(`Решение по №${undone.appeal_id} отменено`);
    state.current = null;
    await openItem(undone.appeal_id);
    await claim();
  }

  function pickAlternative(n) {
    if (!state.current) return;
    const view = state.current.labels[state.active];
    const alt = view.alternatives[n - 1];
    if (!alt) { mcu.toast(`У метки «${title(state.active)}» нет альтернативы ${n}`); return; }
    choose(state.active, alt[0]);
  }

  function switchLabel(step) {
    if (!state.current) return;
    const order = state.current.label_order;
    const at = order.indexOf(state.active);
    state.active = order[(at + step + order.length) % order.length];
    renderLabels();
    renderHighlights();
  }

  // ------------------------------------------------------------------ class search
  const search = $("class-search");
  const results = $("class-results");

  function runSearch() {
    const query = norm(search.value.trim());
    const all = state.classes[state.active] || [];
    state.searchHits = (query ? all.filter((c) => norm(c).includes(query)) : all).slice(0, 50);
    state.searchIndex = 0;
    renderSearch();
  }
  function renderSearch() {
    clear(results);
    results.hidden = !state.searchHits.length;
    state.searchHits.forEach((value, i) => {
      results.appendChild(el("li", {
        role: "option", class: i === state.searchIndex ? "hit current" : "hit",
        "aria-selected": i === state.searchIndex ? "true" : "false", "data-value": value,
        onmousedown: (event) => { event.preventDefault(); pickSearch(value); },
      }, value));
    });
  }
  function closeSearch() {
    search.value = "";
    state.searchHits = [];
    results.hidden = true;
    clear(results);
    search.blur();
  }
  function pickSearch(value) {
    if (state.current && value) choose(state.active, value);
    closeSearch();
  }
  search.addEventListener("focus", () => {
    search.placeholder = `${title(state.active)}: начните вводить`;
    runSearch();
  });
  search.addEventListener("blur", () => {
    search.placeholder = "/ — найти любой класс";
    results.hidden = true;
  });
  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const n = state.searchHits.length;
      if (!n) return;
      state.searchIndex = (state.searchIndex + (event.key === "ArrowDown" ? 1 : -1) + n) % n;
      renderSearch();
    } else if (event.key === "Enter") {
      event.preventDefault();
      event.stopPropagation();
      pickSearch(state.searchHits[state.searchIndex]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeSearch();
    }
  });

  // ------------------------------------------------------------------ bulk correction
  const dialog = $("bulk-dialog");
  let bulkCount = 0;

  function fillBulkValues() {
    const select = $("bulk-value");
    clear(select);
    for (const value of state.classes[$("bulk-label").value] || []) {
      select.appendChild(el("option", { value }, value));
    }
  }
  async function openBulk() {
    const labelSelect = $("bulk-label");
    if (!labelSelect.options.length) {
      for (const label of cfg.label_order) labelSelect.appendChild(el("option", { value: label }, title(label)));
      fillBulkValues();
    }
    $("bulk-error").hidden = true;
    $("bulk-count").textContent = "…";
    $("bulk-confirm").disabled = true;
    dialog.showModal();
    const data = await mcu.post("/console/queue/bulk/count", filters());
    bulkCount = data.count;
    $("bulk-count").textContent = String(bulkCount);
    $("bulk-n").textContent = String(bulkCount);
    $("bulk-confirm").disabled = bulkCount < 1;
  }
  async function confirmBulk() {
    const body = Object.assign(filters(), {
      label: $("bulk-label").value, value: $("bulk-value").value, expected: bulkCount,
    });
    $("bulk-confirm").disabled = true;
    try {
      const data = await mcu.post("/console/queue/bulk", body);
      dialog.close();
      mcu.toast(`Изменено обращений: ${data.changed}`);
      state.current = null;
      await claim();
      await openNext();
    } catch (err) {
      const box = $("bulk-error");
      box.hidden = false;
      box.textContent = err.message;
      const data = await mcu.post("/console/queue/bulk/count", filters());
      bulkCount = data.count;
      $("bulk-count").textContent = String(bulkCount);
      $("bulk-n").textContent = String(bulkCount);
      $("bulk-confirm").disabled = bulkCount < 1;
    }
  }
  $("bulk-label").addEventListener("change", fillBulkValues);
  $("bulk-open").addEventListener("click", () => guarded(openBulk));
  $("bulk-confirm").addEventListener("click", () => guarded(confirmBulk));
  $("bulk-cancel").addEventListener("click", () => dialog.close());

  // ------------------------------------------------------------------ keys and buttons
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || dialog.open) return;
    if (mcu.typing(event)) return;
    const target = event.target;
    if (target && (target.tagName === "BUTTON" || target.tagName === "A") &&
        (event.key === "Enter" || event.key === " ")) return;
    const key = event.key;
    if (key === "Enter") { event.preventDefault(); guarded(submit); }
    else if (/^[1-9]$/.test(key)) { event.preventDefault(); if (!state.busy) pickAlternative(Number(key)); }
    else if (key === "Backspace") { event.preventDefault(); guarded(() => undo(null)); }
    else if (key === "s" || key === "ы") { event.preventDefault(); guarded(skip); }
    else if (key === "/" || key === ".") { event.preventDefault(); if (state.current) search.focus(); }
    else if (key === "ArrowDown") { event.preventDefault(); switchLabel(1); }
    else if (key === "ArrowUp") { event.preventDefault(); switchLabel(-1); }
  });
  $("btn-accept").addEventListener("click", () => guarded(submit));
  $("btn-skip").addEventListener("click", () => guarded(skip));
  $("btn-undo").addEventListener("click", () => guarded(() => undo(null)));
  $("queue-filter").addEventListener("change", () => {
    const params = new URLSearchParams();
    const f = filters();
    for (const [key, value] of Object.entries(f)) {
      if (value === null || value === "" || (key === "sort" && value === "urgency")) continue;
      params.set(key, key === "audit" ? (value ? "1" : "0") : value);
    }
    history.replaceState(null, "", `${location.pathname}${params.toString() ? "?" + params : ""}`);
    if (document.activeElement) document.activeElement.blur();
    state.current = null;
    guarded(async () => { await claim(); await openNext(); });
  });
  $("queue-filter").addEventListener("submit", (event) => event.preventDefault());

  // Claims last a few minutes: renew them while the page is open.
  setInterval(() => { if (!state.busy) claim().catch(() => {}); },
    Math.max(30, cfg.claim_seconds / 3) * 1000);

  // ------------------------------------------------------------------ start
  guarded(async () => {
    const [classes, recent] = await Promise.all([
      mcu.get("/console/queue/classes"), mcu.get("/console/queue/recent")]);
    state.classes = classes.classes;
    state.recent = recent.decisions;
    renderRecent();
    await claim();
    await openNext();
  });
})();
