// Served by servestatic from collectstatic's output, under a hashed name.
document.addEventListener("DOMContentLoaded", () => {
  const note = document.createElement("p");
  note.textContent = "This script was served by servestatic, not by Django.";
  document.body.append(note);
});
