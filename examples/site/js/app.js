document.addEventListener("DOMContentLoaded", () => {
  const year = new Date().getFullYear();
  const footer = document.createElement("footer");
  footer.textContent = `© ${year} Example Site`;
  document.body.appendChild(footer);
});
