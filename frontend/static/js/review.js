// Review pages: keyboard keys. Everything works without this file.
//   /  focuses the search box (explorer, rater audit)
//   j  next pair, k  previous pair (one pair's page)
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) {
      return;
    }
    var link = null;
    if (event.key === "j") {
      link = document.getElementById("next-pair");
    } else if (event.key === "k") {
      link = document.getElementById("previous-pair");
    } else if (event.key === "/") {
      var search = document.getElementById("f-q");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
      return;
    }
    if (link) {
      event.preventDefault();
      window.location.href = link.href;
    }
  });
}());
