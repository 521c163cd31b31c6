// The feature form's "Preview coverage" button: posts the form as it stands to
// the preview view (which saves nothing) and shows the counts it answers.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("coverage-preview");
  const button = document.getElementById("coverage-preview-button");
  const result = document.getElementById("coverage-preview-result");
  if (!box || !button || !result) return;
  button.addEventListener("click", async () => {
    const form = button.closest("form");
    const data = new FormData(form);
    result.textContent = "Counting…";
    try {
      const response = await fetch(box.dataset.url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken") || "" },
      });
      result.innerHTML = response.ok ? await response.text() : `Preview failed (HTTP ${response.status}).`;
    } catch (error) {
      result.textContent = `Preview failed: ${error.message}`;
    }
  });
});
