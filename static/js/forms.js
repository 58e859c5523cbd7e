// Small form helpers: a live "n / max" counter under every textarea that has a maxlength.
"use strict";

(() => {
  for (const area of document.querySelectorAll("form.stack textarea[maxlength]")) {
    if (area.closest("#turn-form")) continue; // the story page has its own counter
    const max = Number(area.getAttribute("maxlength"));
    const counter = document.createElement("p");
    counter.className = "counter";
    counter.setAttribute("aria-live", "off");
    const update = () => {
      const length = [...area.value].length;
      counter.textContent = `${length} / ${max}`;
      counter.classList.toggle("near-limit", length > max * 0.9);
    };
    area.insertAdjacentElement("afterend", counter);
    area.addEventListener("input", update);
    update();
  }
})();

// The new-story form: the length hint names the chosen language's range of words.
(() => {
  const length = document.querySelector("input[data-hints]");
  const language = document.getElementById("language");
  if (!length || !language) return;
  const hints = JSON.parse(length.dataset.hints || "{}");
  const hint = document.getElementById(`${length.id}-hint`);
  language.addEventListener("change", () => {
    if (hint && hints[language.value]) hint.textContent = hints[language.value];
  });
})();
