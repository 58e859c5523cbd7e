// The candidate picker on a story page: a model turn written as several candidates,
// streamed side by side, then chosen (or voted on) with "Choose this"; and the latest
// answer's alternates, which its writer may switch to. Text goes in via textContent only.
// story.js calls RelayCandidates.delta(event) for each candidate's generation_delta and
// RelayCandidates.apply(state) with each state it reads (state.choice, state.alternates).
(function () {
  "use strict";

  const STRINGS = JSON.parse((document.getElementById("story-strings") || {}).textContent || "{}");
  const pageLang = document.documentElement.lang || "en";
  let refresh = () => {};

  function t(key, values) {
    const text = STRINGS[key] || key;
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      values && values[name] !== undefined ? String(values[name]) : whole,
    );
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function csrfToken() {
    const field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  // The panel sits right after the turns, before the writing form.
  function panel(jobId) {
    let node = document.getElementById("candidates");
    if (node && node.dataset.jobId !== String(jobId)) {
      node.remove();
      node = null;
    }
    if (!node) {
      node = el("section", "candidates");
      node.id = "candidates";
      node.dataset.jobId = String(jobId);
      node.dataset.testid = "candidates";
      node.lang = pageLang;
      node.append(el("h2", "candidates-title", t("candidatesTitle")), el("p", "candidates-note"));
      node.append(el("div", "candidate-row"));
      const turns = document.getElementById("turns");
      turns.after(node);
    }
    return node;
  }

  function box(node, index) {
    const row = node.querySelector(".candidate-row");
    let item = row.querySelector(`.candidate[data-index="${Number(index)}"]`);
    if (!item) {
      item = el("article", "candidate");
      item.dataset.index = String(index);
      item.append(el("h3", "candidate-label", t("candidateLabel", { number: Number(index) + 1 })));
      const text = el("div", "turn-text");
      text.lang = document.getElementById("story").lang;
      item.append(text);
      const later = [...row.children].find((other) => Number(other.dataset.index) > index);
      row.insertBefore(item, later || null);
    }
    return item;
  }

  function delta(event) {
    const item = box(panel(event.job_id), Number(event.candidate) || 0);
    item.querySelector(".turn-text").textContent += String(event.delta || "");
  }

  async function send(url, index, button) {
    button.disabled = true;
    try {
      const response = await fetch(url, {
        method: "POST",
        body: JSON.stringify({ index }),
        headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
      });
      if (!response.ok) {
        let message = t("serverAnswered", { status: response.status });
        try {
          const data = await response.json();
          if (data.error && data.error.message) message = data.error.message;
        } catch (_) {
          /* keep the status line */
        }
        const note = document.querySelector("#candidates .candidates-note");
        if (note) note.textContent = message;
      }
    } catch (_) {
      button.disabled = false;
    }
    refresh();
  }

  function showChoice(choice) {
    const node = panel(choice.id);
    const vote = choice.choice_mode === "vote";
    const time = choice.choose_by ? new Date(choice.choose_by).toLocaleTimeString(pageLang) : "";
    node.querySelector(".candidates-note").textContent = t(vote ? "voteNote" : "chooseNote", { time });
    const shown = new Set();
    for (const candidate of choice.candidates) {
      const item = box(node, candidate.index);
      shown.add(String(candidate.index));
      item.querySelector(".turn-text").textContent = String(candidate.text);
      item.querySelectorAll(".candidate-votes, button").forEach((old) => old.remove());
      if (vote) item.append(el("p", "candidate-votes", t("votes", { count: Number(candidate.votes) || 0 })));
      if (choice.may_choose) {
        const button = el("button", "button primary", t(vote ? "voteThis" : "chooseThis"));
        button.type = "button";
        button.addEventListener("click", () => send(`/api/v1/jobs/${Number(choice.id)}/choose`, candidate.index, button));
        item.append(button);
      }
    }
    node.querySelectorAll(".candidate").forEach((item) => {
      if (!shown.has(item.dataset.index)) item.remove(); // caught by the filter: never offered
    });
  }

  function showAlternates(alternates, maySwitch) {
    let node = document.getElementById("alternates");
    if (!alternates || alternates.length < 2) {
      if (node) node.remove();
      return;
    }
    const open = node ? node.open : false;
    if (node) node.remove();
    node = el("details", "alternates");
    node.id = "alternates";
    node.open = open;
    node.lang = pageLang;
    node.append(el("summary", "", t("alternates", { count: alternates.length })));
    const list = el("ol", "alternate-list");
    for (const alternate of alternates) {
      const item = el("li", alternate.current ? "alternate current" : "alternate");
      const text = el("div", "turn-text", alternate.text);
      text.lang = document.getElementById("story").lang;
      item.append(text);
      if (alternate.current) item.append(el("p", "aside", t("shownNow")));
      else if (maySwitch) {
        const button = el("button", "button", t("useThis"));
        button.type = "button";
        const url = `/api/v1/jobs/${Number(alternate.job_id)}/switch`;
        button.addEventListener("click", () => send(url, alternate.index, button));
        item.append(button);
      }
      list.append(item);
    }
    node.append(list);
    (document.getElementById("candidates") || document.getElementById("turns")).after(node);
  }

  function apply(state) {
    const streaming = state.pending_job && state.pending_job.status === "running";
    if (state.choice) showChoice(state.choice);
    else if (!streaming) {
      const node = document.getElementById("candidates");
      if (node) node.remove();
    }
    showAlternates(state.alternates, Boolean(state.may_switch));
  }

  function turnSwitched(event) {
    const turn = event.turn;
    const node = turn && document.querySelector(`.turn[data-turn-id="${Number(turn.id)}"] .turn-text`);
    if (node) node.textContent = String(turn.text);
  }

  window.RelayCandidates = {
    init(options) {
      refresh = options.refresh || refresh;
    },
    apply,
    delta,
    turnSwitched,
  };
})();
