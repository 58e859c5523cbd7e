// The story page, progressively enhanced: post turns without reloading, follow the
// story's Server-Sent Events (new turns, the model's text token by token, hiding),
// load earlier turns. Turn text and titles are untrusted (writers and the model):
// they only ever reach the page through textContent, never innerHTML.
"use strict";

(() => {
  const story = document.getElementById("story");
  if (!story) return;

  const turns = document.getElementById("turns");
  const form = document.getElementById("turn-form");
  const textarea = form ? form.querySelector("textarea") : null;
  const counter = document.getElementById("turn-counter");
  const submit = document.getElementById("turn-submit");
  const turnError = document.getElementById("turn-error");
  const hint = document.getElementById("turn-hint");
  const genError = document.getElementById("generation-error");
  const deadline = document.getElementById("turn-deadline");
  const skipList = document.getElementById("turn-skips");
  const regenForm = document.getElementById("regenerate-form");
  const liveStatus = document.getElementById("live-status");
  const announcer = document.getElementById("turn-announcer");
  const seesHidden = story.dataset.seesHidden === "true";
  const me = story.dataset.me || "";
  let lastPosition = Number(story.dataset.lastPosition) || 0;
  const STALL_MS = 10000;
  let canWrite = submit ? !submit.disabled : false;
  let posting = false;

  // --- words: the page's language, from the server (templates' translations) ---

  const STRINGS = JSON.parse((document.getElementById("story-strings") || {}).textContent || "{}");
  const pageLang = document.documentElement.lang || "en";

  // t("failed", {error}) fills the {error} in the translated sentence.
  function t(key, values) {
    const text = STRINGS[key] || key;
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      values && values[name] !== undefined ? String(values[name]) : whole,
    );
  }

  // --- building turns (textContent only) ------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function creditNode(who, where) {
    const credit = el("p", "credit");
    credit.lang = pageLang;
    credit.append(el("span", "credit-who", who), " ", el("span", "credit-pos", where));
    return credit;
  }

  function renderTurn(turn) {
    const node = el("article", `turn turn-${turn.kind === "ai" ? "ai" : "human"}`);
    node.id = `turn-${Number(turn.position)}`;
    node.dataset.turnId = String(turn.id);
    node.dataset.position = String(turn.position);
    node.dataset.kind = turn.kind === "ai" ? "ai" : "human";
    node.dataset.author = turn.author || "";
    if (turn.reply_to_id) node.dataset.replyTo = String(turn.reply_to_id);
    // §n counts visible paragraphs (turn.number); position stays the turn's identity.
    const number = turn.number ? `§${Number(turn.number)}` : "§–";
    const credit = creditNode(turn.kind === "ai" ? t("model") : turn.credit || turn.author || "", number);
    credit.title = `${turn.number ? t("paragraph", { number: turn.number }) : t("notShown")}, ${turn.credit || ""}`;
    if (turn.number) node.dataset.number = String(turn.number);
    node.append(credit, el("div", "turn-text", turn.text));
    if (turn.hidden) markHidden(node, turn.hidden_reason);
    else if (turn.held) {
      node.classList.add("turn-held");
      const held = seesHidden && turn.held_reason ? t("heldReason", { reason: turn.held_reason }) : t("held");
      const note = el("p", "hidden-reason", held);
      note.lang = pageLang;
      node.append(note);
    }
    if (me && !turn.hidden && story.dataset.reportUrl) {
      const tools = reportTools(turn);
      if (turn.number && document.getElementById("fork-form")) tools.append(" ", forkButton(turn));
      node.append(tools);
    }
    if (turn.kind === "ai" && story.dataset.contextUrl) node.append(contextLink(turn));
    return node;
  }

  // The "What the model saw" link of templates/stories/_turn.html, for turns that arrive live.
  function contextLink(turn) {
    const line = el("p", "turn-context-link");
    line.lang = pageLang;
    const link = el("a", "", t("saw"));
    link.href = story.dataset.contextUrl.replace(/\/0\/context$/, `/${Number(turn.position)}/context`);
    link.rel = "nofollow";
    link.dataset.testid = "context-link";
    line.append(link);
    return line;
  }

  // The same "Report" link as templates/stories/_turn.html, for turns that arrive live.
  function reportTools(turn) {
    const tools = el("p", "turn-tools");
    tools.lang = pageLang;
    const link = el("a", "report-link", t("report"));
    const who = turn.kind === "ai" ? t("theModel") : turn.credit || turn.author || "";
    link.setAttribute("aria-label", t("reportLabel", { number: turn.number || turn.position, who }));
    link.href = story.dataset.reportUrl.replace(/\/0\/report$/, `/${Number(turn.id)}/report`);
    link.rel = "nofollow";
    tools.append(link);
    return tools;
  }

  // The "Fork from here" button of templates/stories/_turn.html (it submits #fork-form).
  function forkButton(turn) {
    const button = el("button", "link-button fork-button", t("fork"));
    button.type = "submit";
    button.setAttribute("form", "fork-form");
    button.name = "position";
    button.value = String(Number(turn.position));
    button.title = t("forkLabel");
    button.dataset.testid = "fork-turn";
    return button;
  }

  // Edit and Withdraw for the viewer's own latest paragraph, when it arrived live.
  function editTools(position) {
    const tools = el("div", "turn-tools edit-tools");
    tools.dataset.position = String(position);
    tools.lang = pageLang;
    const link = el("a", "edit-link", t("edit"));
    link.href = story.dataset.editUrl.replace(/\/0\/edit$/, `/${position}/edit`);
    link.dataset.testid = "edit-turn";
    const form = el("form", "inline");
    form.method = "post";
    form.action = story.dataset.withdrawUrl.replace(/\/0\/withdraw$/, `/${position}/withdraw`);
    const csrf = document.createElement("input");
    csrf.type = "hidden";
    csrf.name = "csrf_token";
    csrf.value = (document.querySelector('input[name="csrf_token"]') || {}).value || "";
    const button = el("button", "link-button", t("withdraw"));
    button.type = "submit";
    button.dataset.testid = "withdraw-turn";
    form.append(csrf, button);
    tools.append(link, " ", form);
    return tools;
  }

  function showEditTools(position) {
    for (const tools of turns.querySelectorAll(".edit-tools")) {
      tools.hidden = Number(tools.dataset.position) !== position;
    }
    const node = position ? findTurn(position) : null;
    if (node && !node.querySelector(".edit-tools") && story.dataset.editUrl) node.append(editTools(position));
  }

  // A paragraph left or came back: the readers' numbers of the ones after it shift.
  function renumberAfter(position, delta, except) {
    for (const other of turns.querySelectorAll(".turn[data-number]")) {
      if (other === except || Number(other.dataset.position) <= position) continue;
      const number = Number(other.dataset.number) + delta;
      other.dataset.number = String(number);
      const pos = other.querySelector(".credit-pos");
      if (pos) pos.textContent = `§${number}`;
    }
  }

  function markHidden(node, reason) {
    delete node.dataset.number;
    const pos = node.querySelector(".credit-pos");
    if (pos) pos.textContent = "§–";
    node.classList.add("turn-hidden");
    let note = node.querySelector(".hidden-reason");
    if (!note) {
      note = el("p", "hidden-reason");
      note.lang = pageLang;
      node.append(note);
    }
    note.textContent = t("hidden", { reason: reason || t("noReason") });
  }

  function findTurn(position) {
    return turns.querySelector(`.turn[data-position="${Number(position)}"]`);
  }

  // Insert in position order; an existing node for the position is replaced.
  function placeTurn(turn) {
    if (turn.hidden && !seesHidden) return;
    if (turn.held && !seesHidden && (!me || turn.author !== me)) return;
    const node = renderTurn(turn);
    const existing = findTurn(turn.position);
    if (existing) {
      existing.replaceWith(node);
      return node;
    }
    const later = [...turns.querySelectorAll(".turn[data-position]")].find(
      (other) => Number(other.dataset.position) > Number(turn.position),
    );
    turns.insertBefore(node, later || turns.querySelector(".turn-pending"));
    return node;
  }

  function pendingNode(jobId) {
    let node = turns.querySelector(".turn-pending");
    if (node && jobId && node.dataset.jobId && node.dataset.jobId !== String(jobId)) {
      node.remove();
      node = null;
    }
    if (!node) {
      node = el("article", "turn turn-ai turn-pending");
      node.setAttribute("aria-busy", "true");
      node.append(creditNode(t("model"), t("writing")), el("div", "turn-text"));
      turns.append(node);
    }
    if (jobId) node.dataset.jobId = String(jobId);
    return node;
  }

  function clearPending() {
    turns.querySelectorAll(".turn-pending").forEach((node) => node.remove());
  }

  // --- state: who writes next, what the viewer may regenerate ---------------

  const CONFLICTS = new Set(["stale_position", "generation_pending", "not_your_turn", "same_writer", "awaiting_review"]);
  let conflictShown = false;

  function setCanWrite(value) {
    canWrite = value;
    if (submit) submit.disabled = !value || posting;
  }

  function showGenerationError(message) {
    if (!genError) return;
    genError.textContent = message || "";
    genError.hidden = !message;
  }

  function applyState(state) {
    const latest = Number(state.last_position) || 0;
    // The story is further on than the events told us (one was lost on the way):
    // fetch the turns we missed before moving our position past them.
    if (latest > lastPosition) fetchTurnsSince(lastPosition);
    // A choice pending: the candidates are shown by candidates.js instead.
    if (state.pending_job && state.pending_job.status !== "choosing") pendingNode(state.pending_job.id);
    else clearPending();
    if (window.RelayCandidates) window.RelayCandidates.apply(state);
    lastPosition = Math.max(lastPosition, latest);
    syncExpected();
    if (hint) hint.textContent = state.hint || "";
    showDeadline(state);
    setCanWrite(Boolean(state.can_write));
    if (conflictShown && state.can_write && !state.pending_job) {
      conflictShown = false;
      showTurnError("");
    }
    showGenerationError(
      state.failed_job ? t("failed", { error: state.failed_job.error || t("unknownError") }) : "",
    );
    // Edit and Withdraw stay only on the paragraph the viewer may still change.
    showEditTools(Number(state.editable_position) || 0);
    if (regenForm) {
      const position = state.regenerate_position;
      regenForm.hidden = !position;
      if (position) {
        regenForm.action = story.dataset.regenerateUrl.replace(/\/0\/regenerate$/, `/${Number(position)}/regenerate`);
      }
    }
  }

  // Round robin with a time per turn: whose time ends when, and the recent skips.
  function showDeadline(state) {
    if (deadline) {
      deadline.textContent = state.deadline || "";
      deadline.dataset.dueAt = state.turn_due_at || "";
      deadline.hidden = !state.deadline;
    }
    if (skipList) {
      const items = (state.skips || []).map((skip) => {
        const item = document.createElement("li");
        item.dataset.at = String(skip.at || "");
        item.textContent = String(skip.text || "");
        return item;
      });
      skipList.replaceChildren(...items);
      skipList.hidden = items.length === 0;
    }
  }

  // Coalesced: a burst of events costs one request, and only the newest answer counts.
  let refreshTimer = null;
  let refreshSeq = 0;
  function refreshState() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(fetchState, 120);
  }

  async function fetchState() {
    const seq = ++refreshSeq;
    try {
      const response = await fetch(story.dataset.stateUrl, { headers: { Accept: "application/json" } });
      if (response.ok && seq === refreshSeq) applyState(await response.json());
    } catch (_) {
      /* offline: the next event or reconnect tries again */
    }
  }

  function syncExpected() {
    if (!form) return;
    const field = form.querySelector('input[name="expected_position"]');
    if (field) field.value = String(lastPosition);
  }

  function sawPosition(position) {
    lastPosition = Math.max(lastPosition, Number(position) || 0);
    story.dataset.lastPosition = String(lastPosition);
    syncExpected();
  }

  // --- events ---------------------------------------------------------------

  const handlers = {
    stream_open(event) {
      sawPosition(event.last_position);
      if (event.job && (event.job.status === "queued" || event.job.status === "running")) {
        pendingNode(event.job.id);
      }
      refreshState();
    },
    turn_created(event) {
      const turn = event.turn;
      if (!turn) return;
      if (turn.kind === "ai") clearPending();
      const placed = placeTurn(turn);
      // Screen readers hear that the model's paragraph is there (the text itself is not read out).
      if (turn.kind === "ai" && placed && turn.number && announcer) {
        announcer.textContent = t("modelAdded", { number: turn.number });
      }
      sawPosition(turn.position);
      if (turn.kind === "human" && event.job && !turn.held) {
        showGenerationError("");
        pendingNode(event.job.id);
      }
      refreshState();
    },
    generation_queued(event) {
      showGenerationError("");
      pendingNode(event.job && event.job.id);
      refreshState();
    },
    generation_started(event) {
      pendingNode(event.job && event.job.id);
    },
    generation_delta(event) {
      if (event.candidate !== undefined && window.RelayCandidates) {
        window.RelayCandidates.delta(event); // one of several candidates, side by side
        return;
      }
      const text = pendingNode(event.job_id).querySelector(".turn-text");
      text.textContent += String(event.delta || "");
    },
    generation_reset(event) {
      // The server gave up mid-answer and the job tries again: drop the abandoned text.
      const text = pendingNode(event.job_id).querySelector(".turn-text");
      text.textContent = "";
    },
    generation_done() {
      refreshState();
    },
    generation_failed(event) {
      clearPending();
      const error = event.job && event.job.error;
      showGenerationError(t("failed", { error: error || t("unknownError") }));
      refreshState();
    },
    turn_hidden(event) {
      const node = turns.querySelector(`.turn[data-turn-id="${Number(event.turn_id)}"]`) || findTurn(event.position);
      if (!node) return;
      const wasNumbered = Boolean(node.dataset.number);
      if (seesHidden) markHidden(node, event.turn ? event.turn.hidden_reason : event.reason);
      else node.remove();
      if (wasNumbered) renumberAfter(Number(event.position), -1, node);
      refreshState();
    },
    turn_held(event) {
      // Only moderators (and the writer, from their own post) see a held paragraph.
      if (seesHidden) fetchTurnsSince(Number(event.position) - 1);
      sawPosition(event.position);
      refreshState();
    },
    turn_restored(event) {
      if (event.turn) {
        placeTurn(event.turn);
        if (event.turn.number) renumberAfter(Number(event.turn.position), +1, null);
      }
      refreshState();
    },
    candidates_ready: () => refreshState(),
    candidate_voted: () => refreshState(),
    candidate_chosen: () => refreshState(),
    turn_switched(event) {
      if (window.RelayCandidates) window.RelayCandidates.turnSwitched(event);
      refreshState();
    },
    turn_skipped() {
      // A writer's time ran out: the turn, the deadline and the list of skips changed.
      refreshState();
    },
    story_updated(event) {
      const title = event.story && event.story.title;
      if (title) {
        document.getElementById("story-title").textContent = title;
        document.title = `${title} · Relay Novel`;
      }
      refreshState();
    },
  };

  let lastEventAt = Date.now();
  function handle(event) {
    lastEventAt = Date.now();
    const handler = handlers[event.type];
    if (handler) handler(event);
  }

  function catchUp() {
    fetchTurnsSince(lastPosition);
  }

  async function fetchTurnsSince(since) {
    try {
      const url = `${story.dataset.turnsUrl}?since=${Number(since) || 0}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      for (const turn of data.turns) {
        placeTurn(turn);
        sawPosition(turn.position);
      }
    } catch (_) {
      /* the stream's next reconnect tries again */
    }
    refreshState();
  }

  function connect() {
    if (!("EventSource" in window) || story.dataset.live !== "true") return;
    const source = new EventSource(story.dataset.eventsUrl);
    let opened = false;
    source.onopen = () => {
      story.dataset.connected = "true";
      if (liveStatus) liveStatus.textContent = "";
      if (opened) catchUp(); // a reconnect: fetch what we may have missed
      opened = true;
    };
    source.onerror = () => {
      story.dataset.connected = "false";
      if (liveStatus) liveStatus.textContent = t("reconnecting");
    };
    source.onmessage = (message) => {
      try {
        handle(JSON.parse(message.data));
      } catch (_) {
        /* a malformed event is ignored, never executed */
      }
    };
    // Servers may name events: listen for each known type too.
    for (const type of Object.keys(handlers)) {
      source.addEventListener(type, (message) => {
        try {
          handle({ type, ...JSON.parse(message.data) });
        } catch (_) {
          /* ignored */
        }
      });
    }
    window.addEventListener("pagehide", () => source.close());
  }

  // --- posting without a reload ---------------------------------------------

  function showTurnError(message) {
    if (!turnError) return;
    turnError.textContent = message || "";
    turnError.hidden = !message;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: { Accept: "application/json", "X-CSRFToken": body.get("csrf_token") || "" },
      credentials: "same-origin",
    });
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = { error: { message: t("serverAnswered", { status: response.status }) } };
    }
    return { ok: response.ok, status: response.status, data };
  }

  function onTurnSubmit(event) {
    event.preventDefault();
    if (posting) return;
    posting = true;
    setCanWrite(canWrite);
    showTurnError("");
    const body = new FormData(form);
    post(form.action, body)
      .then(({ ok, data }) => {
        if (ok) {
          textarea.value = "";
          updateCounter();
          handlers.turn_created({ turn: data.turn, job: data.job });
          return;
        }
        const error = data.error || {};
        showTurnError(error.message || t("didNotWork"));
        // A conflict (lost a race, the model was writing, not your turn) passes once the
        // story moves on and the server says this writer may write: then the red goes.
        conflictShown = error.code !== undefined && CONFLICTS.has(error.code);
        if (Array.isArray(error.missed)) {
          for (const turn of error.missed) placeTurn(turn);
        }
        if (error.last_position !== undefined) sawPosition(error.last_position);
        refreshState();
      })
      .catch(() => showTurnError(t("unreachable")))
      .finally(() => {
        posting = false;
        setCanWrite(canWrite);
      });
  }

  function onRegenerate(event) {
    event.preventDefault();
    regenForm.hidden = true;
    post(regenForm.action, new FormData(regenForm)).then(({ ok, data }) => {
      if (!ok) {
        showTurnError((data.error && data.error.message) || t("cannotRegenerate"));
        refreshState();
        return;
      }
      // The stream brings turn_hidden and generation_queued; this covers a missing stream.
      handlers.generation_queued({ job: data.job });
    });
  }

  // --- counter and earlier turns --------------------------------------------

  function updateCounter() {
    if (!textarea || !counter) return;
    const max = Number(textarea.getAttribute("maxlength")) || 0;
    const length = [...textarea.value].length;
    counter.textContent = max ? `${length} / ${max}` : String(length);
    counter.classList.toggle("near-limit", max > 0 && length > max * 0.9);
  }

  async function loadEarlier(event) {
    event.preventDefault();
    const link = event.currentTarget;
    const before = Number(link.dataset.before);
    link.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(`${story.dataset.turnsUrl}?before=${before}`, {
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      const first = turns.firstElementChild;
      for (const turn of data.turns) {
        if (turn.hidden && !seesHidden) continue;
        if (!findTurn(turn.position)) turns.insertBefore(renderTurn(turn), first);
      }
      if (data.has_earlier && data.turns.length) {
        link.dataset.before = String(data.turns[0].position);
        link.href = link.href.replace(/before=\d+/, `before=${data.turns[0].position}`);
      } else {
        link.parentElement.remove();
      }
    } catch (_) {
      window.location.href = link.href;
    } finally {
      link.removeAttribute("aria-busy");
    }
  }

  if (form && textarea) {
    textarea.addEventListener("input", updateCounter);
    form.addEventListener("submit", onTurnSubmit);
    updateCounter();
  }
  if (regenForm) regenForm.addEventListener("submit", onRegenerate);
  const earlier = document.getElementById("load-earlier");
  if (earlier) earlier.addEventListener("click", loadEarlier);
  if (window.RelayCandidates) window.RelayCandidates.init({ refresh: refreshState });
  connect();
  // While the model writes, a stream that goes quiet (a proxy holding it, a lost event)
  // is checked against the server every few seconds.
  window.setInterval(() => {
    if (turns.querySelector(".turn-pending") && Date.now() - lastEventAt > STALL_MS) {
      lastEventAt = Date.now();
      refreshState();
    }
  }, STALL_MS / 2);
})();
