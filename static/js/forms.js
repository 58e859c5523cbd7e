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
