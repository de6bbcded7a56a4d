// garment report: search the cards by product name and filter them by final label. The page
// reads the same without this script (the filter bar stays hidden).
(() => {
  const bar = document.getElementById("filters");
  if (!bar) return;
  const query = bar.querySelector("input"), label = bar.querySelector("select"), out = bar.querySelector("output");
  const cards = Array.from(document.querySelectorAll("figure.item"));
  const apply = () => {
    const words = query.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards) {
      const name = card.dataset.name || "";
      const keep = (!label.value || card.dataset.label === label.value) && words.every((w) => name.includes(w));
      card.hidden = !keep;
      shown += keep ? 1 : 0;
    }
    out.textContent = words.length || label.value ? `${shown} of ${cards.length} cards` : "";
  };
  query.addEventListener("input", apply);
  label.addEventListener("change", apply);
  bar.hidden = false;
})();
