// "Copy" buttons next to a link an admin sends on (invites). Without a script (or without
// clipboard access) the link stays on the page to copy by hand, and the buttons stay hidden.
(function () {
  "use strict";

  if (!navigator.clipboard) {
    return;
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.dataset.copy);
    if (!source) {
      return;
    }
    // Only the visible words change: the rest of the name (whose link it is) stays.
    var words = button.querySelector(".copy-label") || button;
    var label = words.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(
        function () {
          words.textContent = "Copied";
          window.setTimeout(function () {
            words.textContent = label;
          }, 2000);
        },
        function () {
          words.textContent = "Select the link and copy it";
        }
      );
    });
  });
})();
